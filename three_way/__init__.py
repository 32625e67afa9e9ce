"""Three-way calls with a member unit's remote seat: seat lookup and the conference bridge."""
