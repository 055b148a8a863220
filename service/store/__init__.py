"""PostgreSQL store: schema, migrations, connection pool and queries."""
