"""Idempotency keys: a `POST` retried with the same `Idempotency-Key` is carried out once.

`rules` decides (no I/O), `service` keeps the keys in the database, `middleware` wires
both into the HTTP layer. The README's "Idempotency keys" section is the contract.
"""
