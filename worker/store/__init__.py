"""Where a job lives: the models, the database (engine, transactions, migrations)."""
