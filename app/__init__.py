"""The composition: the one package that knows every other and wires them into a running node.

- `app.config`: the node's whole configuration (each package's settings from the one INI file, read by
  inifile, plus [server] and [callflows]) and the checks that span sections;
- `app.adapters`: the real parts behind the call flows' ports (tickets, asr, recordings, ivr);
- `app.wiring`: the call applications (the 12345 flow, the demo menu) on an IVR node, and the job lock;
- `app.transcripts`: after a call, its recording transcribed and linked to the call's ticket;
- `app.calls_api` and `app.http`: the HTTP side (health, calls, the tickets API) as one FastAPI app.

Dependency direction (tests/app/test_import_direction.py): app may import everything; nothing imports app
except server.py. callflows imports nothing outside itself (its ports are the contract), the edges (ivr,
asr, recordings, tts) and the domain (tickets) never import each other; the leaf modules `pcm` (audio
format) and `inifile` (configuration reader) have no project imports and may be imported by all.
"""
