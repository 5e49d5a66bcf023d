"""The prediction store: every input digitlab sees and every prediction it makes.

`models` (tables), `crud` (writes), `queries` (reads), `db` (engines, sessions, errors),
`migrate` (Alembic in code). All SQL lives here; nothing here imports torch.
"""
