"""Tests of protocol_lab.client against an in-memory fake of the API."""
