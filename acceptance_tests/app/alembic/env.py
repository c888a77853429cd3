"""Run the example app's migrations on SQLALCHEMY_URL, else the ini's sqlalchemy.url."""

import os
from logging.config import fileConfig

import sqlalchemy
from alembic import context

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
url = os.environ.get("SQLALCHEMY_URL") or config.get_main_option("sqlalchemy.url")

if context.is_offline_mode():
    context.configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = sqlalchemy.create_engine(url or "sqlite://", poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
