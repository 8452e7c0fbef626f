"""All persistence: tables, engine and transactions, migrations. The only package that speaks SQL."""
