"""Helpers shared by the tests: host start-up, the server client, fixture builders."""
