"""Administering accounts (monitor.accounts), on SQLite and PostgreSQL: an admin creates users (a customer user
only for a verified customer; a password set or generated once), changes roles, deactivates and reactivates,
revokes tokens; the last active admin is never lost and an admin cannot deactivate themselves."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from monitor.accounts import (
    AccountRefusal,
    ApiToken,
    Role,
    User,
    add_user,
    change_role,
    create_user,
    issue_token,
    list_tokens,
    list_users,
    principal_for_token,
    principal_of,
    revoke_token,
    set_active,
    token_digest,
    verify_password,
)
from monitor.errors import AccessDenied, NotFound
from monitor.models import Customer

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


@pytest.fixture
async def world(sessionmaker):
    async with sessionmaker.begin() as s:
        good, bad = Customer(name="acme", verified=True), Customer(name="shady", verified=False)
        s.add_all([good, bad])
        await s.flush()
        ada = await create_user(s, "ada", Role.ADMIN, password="ada-pass-1")
        tara = await create_user(s, "tara", Role.TECHNICIAN, password="tara-pass-1")
        return {"ada": principal_of(ada), "tara": principal_of(tara), "acme": good.id, "shady": bad.id}


async def _refusal(sm, call) -> AccountRefusal:
    with pytest.raises(AccountRefusal) as caught:
        async with sm.begin() as s:
            await call(s)
    return caught.value


async def test_an_admin_creates_a_user_with_a_password_or_a_generated_one(sessionmaker, world):
    async with sessionmaker.begin() as s:
        user, shown = await add_user(s, world["ada"], " Reza ", Role.TECHNICIAN, password="a-long-secret")
        cust, generated = await add_user(s, world["ada"], "alice", "customer", customer_id=world["acme"])
    assert (user.username, shown) == ("reza", None)
    assert generated and len(generated) >= 12
    async with sessionmaker() as s:
        stored = {u.username: u for u in (await s.execute(User.__table__.select())).all()}
        assert verify_password(stored["reza"].password_hash, "a-long-secret")
        assert verify_password(stored["alice"].password_hash, generated)
        assert stored["alice"].customer_id == world["acme"] and generated not in stored["alice"].password_hash


@pytest.mark.parametrize("username, role, customer, password, code, field", [
    ("alice", "customer", None, None, "customer_required", "customer_id"),
    ("alice", "customer", "shady", None, "customer_unverified", "customer_id"),
    ("alice", "customer", 999, None, "customer_unknown", "customer_id"),
    ("reza", "technician", "acme", None, "staff_with_customer", "customer_id"),
    ("tara", "technician", None, None, "username_taken", "username"),
    ("رضا", "technician", None, None, "username_invalid", "username"),
    ("reza", "boss", None, None, "role_unknown", "role"),
    ("reza", "noc", None, "short", "password_short", "password"),
])
async def test_a_bad_new_user_is_refused_naming_the_field(sessionmaker, world, username, role, customer,
                                                          password, code, field):
    cid = world.get(customer, customer) if isinstance(customer, str) else customer
    refusal = await _refusal(sessionmaker, lambda s: add_user(s, world["ada"], username, role, customer_id=cid,
                                                              password=password))
    assert (refusal.code, refusal.field) == (code, field)
    async with sessionmaker() as s:
        assert len((await s.execute(User.__table__.select())).all()) == 2


async def test_only_an_admin_administers_accounts(sessionmaker, world):
    with pytest.raises(AccessDenied):
        async with sessionmaker.begin() as s:
            await add_user(s, world["tara"], "reza", Role.ADMIN, password="a-long-secret")
    with pytest.raises(AccessDenied):
        async with sessionmaker.begin() as s:
            await change_role(s, world["tara"], world["tara"].user_id, Role.ADMIN)


async def test_the_last_active_admin_is_never_lost_and_no_admin_deactivates_themselves(sessionmaker, world):
    ada, tara = world["ada"], world["tara"]
    refusal = await _refusal(sessionmaker, lambda s: change_role(s, ada, ada.user_id, Role.NOC))
    assert (refusal.code, refusal.field) == ("last_admin", "role")
    refusal = await _refusal(sessionmaker, lambda s: set_active(s, ada, ada.user_id, False))
    assert (refusal.code, refusal.field) == ("self_deactivation", "active")
    async with sessionmaker.begin() as s:
        await change_role(s, ada, tara.user_id, Role.ADMIN)
    # Two admins: tara may be deactivated by ada, then ada is the last one again.
    async with sessionmaker.begin() as s:
        await set_active(s, ada, tara.user_id, False)
    refusal = await _refusal(sessionmaker, lambda s: change_role(s, ada, ada.user_id, Role.FINANCE))
    assert refusal.code == "last_admin"
    async with sessionmaker.begin() as s:
        await set_active(s, ada, tara.user_id, True)
        await change_role(s, ada, ada.user_id, Role.FINANCE)  # tara is an active admin now
    async with sessionmaker() as s:
        assert (await s.get(User, ada.user_id)).role == "finance"


async def test_a_role_change_to_customer_names_a_verified_customer(sessionmaker, world):
    ada, tara = world["ada"], world["tara"]
    refusal = await _refusal(sessionmaker, lambda s: change_role(s, ada, tara.user_id, "customer",
                                                                 customer_id=world["shady"]))
    assert refusal.code == "customer_unverified"
    async with sessionmaker.begin() as s:
        user = await change_role(s, ada, tara.user_id, "customer", customer_id=world["acme"])
        assert (user.role, user.customer_id) == ("customer", world["acme"])
        user = await change_role(s, ada, tara.user_id, "noc")
        assert (user.role, user.customer_id) == ("noc", None)


async def test_a_revoked_token_no_longer_names_anyone(sessionmaker, world):
    ada, tara = world["ada"], world["tara"]
    async with sessionmaker.begin() as s:
        token = await issue_token(s, tara.user_id, "ci", NOW)
    async with sessionmaker() as s:
        (row,) = await list_tokens(s, tara.user_id)
        assert row.digest == token_digest(token) and token not in row.digest
        assert (await principal_for_token(s, token)).username == "tara"
    with pytest.raises(NotFound):
        async with sessionmaker.begin() as s:
            await revoke_token(s, ada, ada.user_id, row.id, NOW)  # not ada's token
    async with sessionmaker.begin() as s:
        assert await revoke_token(s, ada, tara.user_id, row.id, NOW) is True
        assert await revoke_token(s, ada, tara.user_id, row.id, NOW) is False
    async with sessionmaker() as s:
        assert await principal_for_token(s, token) is None
        assert (await s.get(ApiToken, row.id)).revoked_at == NOW


async def test_a_deactivated_users_tokens_stop_working(sessionmaker, world):
    async with sessionmaker.begin() as s:
        token = await issue_token(s, world["tara"].user_id, "ci", NOW)
        await set_active(s, world["ada"], world["tara"].user_id, False)
    async with sessionmaker() as s:
        assert await principal_for_token(s, token) is None


async def test_two_admins_deactivating_each_other_at_once_leave_one_admin(pg_db):
    """On PostgreSQL two transactions run at once: the second waits on the admins' rows and is refused."""
    import asyncio

    sm = pg_db.sessionmaker
    async with sm.begin() as s:
        ada = principal_of(await create_user(s, "ada", Role.ADMIN, password="ada-pass-1"))
        bea = principal_of(await create_user(s, "bea", Role.ADMIN, password="bea-pass-1"))
    first_locked, second_done = asyncio.Event(), asyncio.Event()

    async def second_is_waiting() -> None:
        """Until the other transaction waits on a row lock (asked of PostgreSQL, not timed) or has finished."""
        async with sm() as s:
            while not second_done.is_set() and not (await s.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND datname = current_database()"))).scalar_one():
                await s.rollback()
                await asyncio.sleep(0.01)

    async def first():
        async with sm.begin() as s:
            await set_active(s, ada, bea.user_id, False)
            first_locked.set()
            await second_is_waiting()  # keep this transaction open until the second one waits on its locks

    async def second():
        await first_locked.wait()
        try:
            async with sm.begin() as s:
                await set_active(s, bea, ada.user_id, False)
        finally:
            second_done.set()

    results = await asyncio.gather(first(), second(), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], AccountRefusal) and results[1].code == "last_admin"
    async with sm() as s:
        assert [(u.username, u.active) for u in await list_users(s)] == [("ada", True), ("bea", False)]
