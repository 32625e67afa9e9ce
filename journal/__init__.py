"""The node's local journal of what callers say, so that a database outage delays a ticket but never loses it.

An edge package: it imports no other package of the project. The composition (app/) writes every answer to
the journal before the database (records, store), reserves ticket numbers for outages (numbers) and runs
the replayer that writes journaled calls to the database once it is back (replayer). `python -m journal`
shows what a journal holds.
"""
