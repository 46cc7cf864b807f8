"""Create the demo accounts for `make run` (idempotent): an admin and a customer of the example inventory.

Demo only: the passwords are printed and must never be used outside a laptop.
"""

import asyncio

from sqlalchemy import select

from monitor.accounts import Role, User, create_user, issue_token
from monitor.db import make_engine, make_sessionmaker, upgrade
from monitor.settings import load_settings

DEMO = [("admin", "admin", None, "admin-demo"), ("parsian", "customer", "parsian-shop", "parsian-demo")]


async def main() -> None:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    await upgrade(engine)
    sm = make_sessionmaker(engine)
    from monitor.clock import SystemClock
    from monitor.inventory import apply_inventory, load_inventory

    inv, specs = load_inventory("examples/inventory.yaml")
    await apply_inventory(sm, inv, specs, SystemClock().now())
    async with sm.begin() as s:
        from monitor.models import Customer

        for username, role, customer, password in DEMO:
            if (await s.execute(select(User).where(User.username == username))).scalar_one_or_none():
                continue
            cid = (await s.execute(select(Customer.id).where(Customer.name == customer))).scalar() if customer else None
            await create_user(s, username, role, password=password, customer_id=cid)
        scraper = (await s.execute(select(User).where(User.username == "prometheus"))).scalar_one_or_none() \
            or await create_user(s, "prometheus", Role.NOC)
        token = await issue_token(s, scraper.id, "demo scrape", SystemClock().now())
    await engine.dispose()
    print(f"metrics (NOC token): curl -H 'Authorization: Bearer {token}' http://127.0.0.1:8080/metrics")
    print("demo logins: admin / admin-demo (staff), parsian / parsian-demo (customer)  http://127.0.0.1:8080/")


if __name__ == "__main__":
    asyncio.run(main())
