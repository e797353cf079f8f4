"""SQLAlchemy 2.x with one driver: sqlalchemy-psycopg2 | sqlalchemy-psycopg | sqlalchemy-asyncpg."""
import asyncio
import datetime
import sys
from decimal import Decimal

from sqlalchemy import (Column, ForeignKey, Integer, MetaData, Table, Text, create_engine,
                        inspect, insert, select, text, update, func)
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from common import DB, HOST, PASSWORD, PORT, USER, step

C = sys.argv[1]
DRIVER = {"sqlalchemy-psycopg2": "psycopg2", "sqlalchemy-psycopg": "psycopg",
          "sqlalchemy-asyncpg": "asyncpg"}[C]
BASE = f"postgresql+{DRIVER}://{USER}:{PASSWORD}@{HOST}:{PORT}/{DB}"


def mark(what):
    step(C, what)


class Base(DeclarativeBase):
    pass


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = {"schema": "stadtwerke"}
    ticket_id: Mapped[int] = mapped_column(primary_key=True)
    customer_no: Mapped[int | None] = mapped_column(ForeignKey("stadtwerke.customers.customer_no"))
    subject: Mapped[str]
    note: Mapped[str | None]
    status: Mapped[str] = mapped_column(server_default="open")


meta = MetaData()
customers = Table("customers", meta,
                  Column("customer_no", Integer, primary_key=True),
                  Column("name", Text), Column("city", Text), Column("phone", Text),
                  schema="stadtwerke")
Table("customers", Base.metadata, Column("customer_no", Integer, primary_key=True),
      schema="stadtwerke")


def inspection(conn):
    insp = inspect(conn)
    mark("inspect get_schema_names")
    insp.get_schema_names()
    mark("inspect get_table_names")
    insp.get_table_names(schema="stadtwerke")
    mark("inspect get_view_names")
    insp.get_view_names(schema="stadtwerke")
    mark("inspect get_columns")
    insp.get_columns("customers", schema="stadtwerke")
    mark("inspect get_pk_constraint")
    insp.get_pk_constraint("customers", schema="stadtwerke")
    mark("inspect get_foreign_keys")
    insp.get_foreign_keys("tickets", schema="stadtwerke")
    mark("inspect get_indexes")
    insp.get_indexes("customers", schema="stadtwerke")
    mark("inspect get_unique_constraints")
    insp.get_unique_constraints("customers", schema="stadtwerke")
    mark("inspect has_table")
    insp.has_table("meter_readings", schema="stadtwerke")
    insp.has_table("no_such_table", schema="stadtwerke")
    mark("reflect Table(autoload_with=...)")
    Table("meter_readings", MetaData(), schema="stadtwerke", autoload_with=conn)


def core(conn):
    mark("core select with filters")
    conn.execute(select(customers.c.customer_no, customers.c.name)
                 .where(customers.c.city == "Berlin", customers.c.customer_no > 1000)
                 .order_by(customers.c.name).limit(10)).all()
    readings = Table("meter_readings", MetaData(), Column("reading_id", Integer, primary_key=True),
                     Column("customer_no", Integer), Column("read_on"), Column("cubic_m"),
                     Column("estimated"), schema="stadtwerke")
    conn.execute(select(readings).where(readings.c.read_on >= datetime.date(2026, 1, 1),
                                        readings.c.cubic_m > Decimal("50.00"),
                                        readings.c.estimated.is_(False))).all()
    mark("core text() with bound parameter")
    conn.execute(text("SELECT customer_no, name FROM stadtwerke.customers WHERE phone = :phone"),
                 {"phone": "+49 30 1234567"}).all()
    mark("core select IN list")
    conn.execute(select(customers.c.name).where(customers.c.customer_no.in_([1001, 1002, 1003]))).all()
    mark("core aggregate")
    conn.execute(select(customers.c.city, func.count()).group_by(customers.c.city)).all()
    mark("core insert returning")
    tickets = Ticket.__table__
    conn.execute(insert(tickets).values(customer_no=1002, subject="Rückruf", note=C)
                 .returning(tickets.c.ticket_id)).all()
    mark("core update")
    conn.execute(update(tickets).where(tickets.c.note == C).values(status="closed"))
    mark("commit")
    conn.commit()


def orm(session):
    mark("orm session.get")
    session.get(Ticket, 1)
    mark("orm select with filter")
    session.scalars(select(Ticket).where(Ticket.customer_no == 1001, Ticket.status == "open")
                    .order_by(Ticket.ticket_id)).all()
    mark("orm add + flush (insert returning)")
    session.add(Ticket(customer_no=1003, subject="Rückruf", note=C + " orm"))
    session.flush()
    mark("orm executemany insert (insertmanyvalues)")
    session.add_all([Ticket(customer_no=1001, subject="Sammel", note=C + " a"),
                     Ticket(customer_no=1002, subject="Sammel", note=C + " b")])
    session.flush()
    mark("orm commit")
    session.commit()
    mark("orm rollback")
    session.add(Ticket(customer_no=1004, subject="verworfen"))
    session.flush()
    session.rollback()


def run_sync():
    mark("create_engine + first connect (dialect initialize)")
    engine = create_engine(BASE + f"?application_name={C}", pool_pre_ping=True)
    with engine.connect() as conn:
        inspection(conn)
        conn.rollback()
    mark("checkout with pool_pre_ping")
    with engine.connect() as conn:
        core(conn)
    mark("engine.begin() (pre-ping on checkout)")
    with engine.begin() as conn:
        conn.execute(select(customers.c.name).where(customers.c.customer_no == 1001)).one()
    with Session(engine) as session:
        orm(session)
    mark("dispose")
    engine.dispose()


async def run_async():
    mark("create_async_engine + first connect (dialect initialize)")
    engine = create_async_engine(BASE, pool_pre_ping=True,
                                 connect_args={"server_settings": {"application_name": C}})
    async with engine.connect() as conn:
        await conn.run_sync(inspection)
        await conn.rollback()
    mark("checkout with pool_pre_ping")
    async with engine.connect() as conn:
        await conn.run_sync(core)
    mark("engine.begin() (pre-ping on checkout)")
    async with engine.begin() as conn:
        (await conn.execute(select(customers.c.name).where(customers.c.customer_no == 1001))).one()
    async with AsyncSession(engine) as session:
        await session.run_sync(orm)
    mark("dispose")
    await engine.dispose()


if DRIVER == "asyncpg":
    asyncio.run(run_async())
else:
    run_sync()
