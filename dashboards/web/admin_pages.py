"""The admin's pages: ``/admin`` (the sections), ``/admin/users`` (users and roles) and each user's page with
their API tokens.

The pages only read and ask: every change goes through :mod:`monitor.accounts` (``add_user``,
``change_role``, ``set_active``, ``issue_named_token``, ``revoke_token``), which refuses what would leave no
active admin or let an admin deactivate themselves. A refusal is the page again (400) with the Persian reason,
the field marked and the form as typed. A generated password and a new token are shown once, on the answer to
the form that made them (not stored in clear, never shown again; the answer is ``Cache-Control: no-store``).
Last login is the latest successful login attempt; a token's last use is not recorded.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import Field
from sqlalchemy import func, select

from dashboards.models import LoginAttempt
from dashboards.web.deps import DEPS
from dashboards.web.html import see_other
from dashboards.web.middleware import PRINCIPAL
from dashboards.web.params import Params, ids
from dashboards.web.routing import BODY, FORM, HTML, JSON, PATH, RouteTable
from dashboards.web.templating import N_, render
from monitor import accounts
from monitor.accounts import AccountRefusal, Role
from monitor.errors import NotFound
from monitor.models import Customer

__all__ = ["routes", "ADMIN_ROLES", "REFUSALS", "ROLE_WORDS"]

routes = RouteTable()
ADMIN_ROLES = frozenset({Role.ADMIN})
USER = ids("user_id")
TOKEN = ids("user_id", "token_id")
ERRORS = {400: ("a field over its length (JSON), or the page again with the reason in Persian and the form "
                "as typed", (JSON, HTML))}

ROLE_WORDS = {Role.ADMIN: N_("Administrator"), Role.NOC: N_("NOC"), Role.TECHNICIAN: N_("Technician"),
              Role.FINANCE: N_("Finance"), Role.CUSTOMER: N_("Customer")}
# Each refusal of monitor.accounts in the reader's language, and the form field it marks.
REFUSALS = {
    "username_invalid": N_("The username is 2 to 100 of a-z, 0-9, '.', '_' or '-', starting with a letter or "
                           "digit."),
    "username_taken": N_("A user with this username already exists."),
    "role_unknown": N_("Choose one of the roles."),
    "customer_required": N_("A customer user must name its customer."),
    "customer_unknown": N_("There is no customer with this name."),
    "customer_unverified": N_("This customer's identity is not verified; it can have no user (rule 3)."),
    "staff_with_customer": N_("A staff user belongs to no customer; leave the customer empty."),
    "password_short": N_("The password must be at least 10 characters; leave it empty to generate one."),
    "last_admin": N_("This is the last active admin; make another user an admin first."),
    "self_deactivation": N_("You cannot deactivate your own account."),
    "token_name": N_("Give the token a name of up to 100 characters."),
    "inactive_user": N_("The user is deactivated; reactivate them before issuing a token."),
}
NOTICES = {"created": N_("The user was created."), "role": N_("The role was changed."),
           "deactivated": N_("The user was deactivated: they cannot log in and their tokens do not work."),
           "reactivated": N_("The user was reactivated."), "revoked": N_("The token was revoked.")}
SECTIONS = (("/admin/users", N_("Users and roles"), N_("Create users, change roles, deactivate, API tokens.")),
            ("/admin/calendar", N_("Office calendar"), N_("Closures and official holidays.")),
            ("/admin/channels", N_("Notification channels"), N_("Where notices go; disable and enable.")),
            ("/admin/escalation", N_("Escalation policies"), N_("Who is paged, in what order, and who is on "
                                                                 "call now.")),
            ("/admin/audit", N_("Audit log"), N_("Reads of customers' data and judicial disclosures (rule 4).")))


class CsrfForm(Params):
    csrf: str = Field("", max_length=200, description="the session's CSRF token (checked before the route)")


class NewUserForm(CsrfForm):
    username: str = Field("", max_length=100, description="the login name: a-z, 0-9, '.', '_', '-'")
    role: str = Field("", max_length=20, description="admin, noc, technician, finance or customer")
    customer: str = Field("", max_length=200, description="a customer user's customer (its name)")
    display_name: str = Field("", max_length=200, description="the name shown on pages")
    email: str = Field("", max_length=200)
    password: str = Field("", max_length=200, description="empty: one is generated and shown once")


class RoleForm(CsrfForm):
    role: str = Field("", max_length=20, description="admin, noc, technician, finance or customer")
    customer: str = Field("", max_length=200, description="a customer user's customer (its name)")


class ActiveForm(CsrfForm):
    active: bool = Field(description="true to reactivate, false to deactivate")


class TokenForm(CsrfForm):
    name: str = Field("", max_length=200, description="what the token is for")


def _refusal(refusal: AccountRefusal) -> tuple[str, str]:
    """The Persian reason and the form field of a refusal."""
    field = "customer" if refusal.field == "customer_id" else refusal.field
    return REFUSALS.get(refusal.code, N_("The change was refused.")), field


async def _customer_id(session, name: str) -> int | None:
    """The id of the customer named ``name`` ('' is none); an unknown name is refused naming the field."""
    name = (name or "").strip()
    if not name:
        return None
    cid = (await session.execute(select(Customer.id).where(Customer.name == name))).scalar_one_or_none()
    if cid is None:
        raise AccountRefusal("customer_unknown", "customer", f"no customer named {name!r}")
    return cid


@routes.get("/admin", roles=ADMIN_ROLES, produces=HTML)
async def admin_home(request: web.Request) -> web.Response:
    """The admin's sections."""
    return render(request, "admin.html", {"sections": SECTIONS}, title=N_("Admin"))


async def _users_page(request: web.Request, *, error: str = "", typed: dict | None = None, status: int = 200,
                      secret: str = "", created: str = "") -> web.Response:
    async with request.app[DEPS].sessionmaker() as session:
        users = await accounts.list_users(session)
        logins = dict((await session.execute(
            select(LoginAttempt.username, func.max(LoginAttempt.at)).where(LoginAttempt.success.is_(True))
            .group_by(LoginAttempt.username))).all())
        customers = dict((await session.execute(select(Customer.id, Customer.name).where(
            Customer.id.in_({u.customer_id for u in users if u.customer_id is not None})))).all())
    resp = render(request, "admin_users.html", {
        "users": users, "logins": logins, "customers": customers, "role_words": ROLE_WORDS, "roles": list(Role),
        "error": error, "typed": typed or {"role": "technician"}, "secret": secret, "created": created,
        "notice": NOTICES.get(request.query.get("done", ""), ""),
    }, status=status, title=N_("Users and roles"))
    if secret:
        resp.headers["Cache-Control"] = "no-store"
    return resp


@routes.get("/admin/users", roles=ADMIN_ROLES, produces=HTML)
async def admin_users(request: web.Request) -> web.Response:
    """Every user with role, customer, active and last login; the form to create one."""
    return await _users_page(request)


@routes.post("/admin/users", roles=ADMIN_ROLES, body=NewUserForm, body_media=FORM, produces=HTML,
             status=(200, 303), errors=ERRORS)
async def admin_user_create(request: web.Request) -> web.Response:
    """Create a user; a generated password is shown once on the answer (200), else back to the list (303)."""
    form = request[BODY]
    typed = form.model_dump(exclude={"csrf", "password"})
    try:
        async with request.app[DEPS].sessionmaker.begin() as session:
            user, generated = await accounts.add_user(
                session, request[PRINCIPAL], form.username, form.role,
                customer_id=await _customer_id(session, form.customer), password=form.password or None,
                display_name=form.display_name, email=form.email)
    except AccountRefusal as refusal:
        error, field = _refusal(refusal)
        return await _users_page(request, error=error, typed=typed | {"field": field}, status=400)
    if generated:
        return await _users_page(request, secret=generated, created=user.username)
    return see_other(f"/admin/users/{user.id}?done=created")


async def _user_page(request: web.Request, user_id: int, *, error: str = "", typed: dict | None = None,
                     status: int = 200, token: str = "") -> web.Response:
    async with request.app[DEPS].sessionmaker() as session:
        user = await session.get(accounts.User, user_id)
        if user is None:
            raise NotFound(f"user {user_id}")
        tokens = await accounts.list_tokens(session, user_id)
        customer = await session.get(Customer, user.customer_id) if user.customer_id else None
        last_login = (await session.execute(select(func.max(LoginAttempt.at)).where(
            LoginAttempt.username == user.username, LoginAttempt.success.is_(True)))).scalar_one_or_none()
    resp = render(request, "admin_user.html", {
        "u": user, "tokens": tokens, "customer": customer, "last_login": last_login, "role_words": ROLE_WORDS,
        "roles": list(Role), "error": error, "typed": typed or {}, "token": token,
        "is_self": user.id == request[PRINCIPAL].user_id,
        "notice": NOTICES.get(request.query.get("done", ""), ""),
    }, status=status, title=N_("User"))
    if token:
        resp.headers["Cache-Control"] = "no-store"
    return resp


@routes.get("/admin/users/{user_id}", roles=ADMIN_ROLES, path=USER, produces=HTML)
async def admin_user(request: web.Request) -> web.Response:
    """One user: role, active, last login, their API tokens (never the secret)."""
    return await _user_page(request, request[PATH].user_id)


@routes.post("/admin/users/{user_id}/role", roles=ADMIN_ROLES, path=USER, body=RoleForm, body_media=FORM,
             produces=HTML, status=303, errors=ERRORS)
async def admin_user_role(request: web.Request) -> web.Response:
    """Change the user's role (a customer user names a verified customer); never away from the last admin."""
    user_id, form = request[PATH].user_id, request[BODY]
    try:
        async with request.app[DEPS].sessionmaker.begin() as session:
            await accounts.change_role(session, request[PRINCIPAL], user_id, form.role,
                                       customer_id=await _customer_id(session, form.customer))
    except AccountRefusal as refusal:
        error, field = _refusal(refusal)
        typed = form.model_dump(exclude={"csrf"}) | {"field": field}
        return await _user_page(request, user_id, error=error, typed=typed, status=400)
    return see_other(f"/admin/users/{user_id}?done=role")


@routes.post("/admin/users/{user_id}/active", roles=ADMIN_ROLES, path=USER, body=ActiveForm, body_media=FORM,
             produces=HTML, status=303, errors=ERRORS)
async def admin_user_active(request: web.Request) -> web.Response:
    """Deactivate or reactivate the user; an admin cannot deactivate themselves or the last admin."""
    user_id, form = request[PATH].user_id, request[BODY]
    try:
        async with request.app[DEPS].sessionmaker.begin() as session:
            await accounts.set_active(session, request[PRINCIPAL], user_id, form.active)
    except AccountRefusal as refusal:
        error, field = _refusal(refusal)
        return await _user_page(request, user_id, error=error, typed={"field": field}, status=400)
    return see_other(f"/admin/users/{user_id}?done={'reactivated' if form.active else 'deactivated'}")


@routes.post("/admin/users/{user_id}/tokens", roles=ADMIN_ROLES, path=USER, body=TokenForm, body_media=FORM,
             produces=HTML, errors=ERRORS)
async def admin_token_create(request: web.Request) -> web.Response:
    """Issue an API token for the user and show it once, on this answer only (only its SHA-256 is stored)."""
    deps, user_id, form = request.app[DEPS], request[PATH].user_id, request[BODY]
    try:
        async with deps.sessionmaker.begin() as session:
            token = await accounts.issue_named_token(session, request[PRINCIPAL], user_id, form.name,
                                                     deps.clock.now())
    except AccountRefusal as refusal:
        error, field = _refusal(refusal)
        return await _user_page(request, user_id, error=error, typed={"name": form.name, "field": field},
                                status=400)
    return await _user_page(request, user_id, token=token)


@routes.post("/admin/users/{user_id}/tokens/{token_id}/revoke", roles=ADMIN_ROLES, path=TOKEN, body=CsrfForm,
             body_media=FORM, produces=HTML, status=303)
async def admin_token_revoke(request: web.Request) -> web.Response:
    """Revoke one of the user's tokens (revoking twice is harmless)."""
    deps, ids_ = request.app[DEPS], request[PATH]
    async with deps.sessionmaker.begin() as session:
        await accounts.revoke_token(session, request[PRINCIPAL], ids_.user_id, ids_.token_id, deps.clock.now())
    return see_other(f"/admin/users/{ids_.user_id}?done=revoked")
