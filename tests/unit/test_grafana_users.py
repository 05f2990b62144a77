"""Ownership of Grafana users (powerview/onboarding/grafana/users.py, issue 17) against the Grafana stand-in,
without Ansible: the owner record, the attribution of users made before it (the deployed
playbooks' `<company>` default user and their add-user users, found by their team membership),
users held by several companies, Grafana server admins, and logins that are another user's email.
The playbooks themselves are run in tests/integration/test_grafana_user_ownership.py."""

from __future__ import annotations

import json

import pytest
import requests
from test_grafana_provisioning import ADMIN, create, make_settings

from powerview.onboarding.grafana import actions
from powerview.onboarding.grafana.client import Grafana
from powerview.onboarding.grafana.company import ProvisioningError
from powerview.onboarding.grafana.users import RECORD_NAME, default_user_of, owners_of

TENANCIES = ["team", "org"]


def add_user(s, login, company="acme", check=False, user_password="correct horse battery"):
    return actions.run(
        "user_present",
        check=check,
        company=company,
        user_login=login,
        user_email=f"{login}@{company}.example",
        user_password=user_password,
        influx_token="tok-1",
        influx_token_id="id-1",
        settings=s,
    )


def api(grafana, method, path, org=None, **kw):
    headers = {"X-Grafana-Org-Id": str(org)} if org is not None else {}
    answer = requests.request(method, grafana.url + path, auth=ADMIN, headers=headers, timeout=10, **kw)
    assert answer.status_code == 200, answer.text
    return answer.json()


def hand_made_user(grafana, login, email=None, name="", password="hand-made-password"):
    body = {"login": login, "email": email or f"{login}@example.com", "name": name, "password": password}
    return api(grafana, "POST", "/api/admin/users", json=body)["id"]


def hold(grafana, s, company, user_id):
    """Put a user in a company as an older version (or an admin by hand) did: no record."""
    if s.tenancy == "org":
        org = grafana.org_by_name(company)["id"]
        login = grafana.users[user_id]["login"]
        api(grafana, "POST", f"/api/orgs/{org}/users", json={"loginOrEmail": login, "role": "Viewer"})
    else:
        team = grafana.team_by_name(company)["id"]
        api(grafana, "POST", f"/api/teams/{team}/members", json={"userId": user_id})


def holds(grafana, s, company, login):
    user = grafana.user_by_login(login)
    if s.tenancy == "org":
        return grafana.org_by_name(company)["id"] in grafana.user_orgs(user["id"])
    return user["id"] in grafana.team_members[grafana.team_by_name(company)["id"]]


def two(grafana, tmp_path, tenancy):
    s = make_settings(grafana, tmp_path, tenancy=tenancy)
    create(s, company="acme", token="tok-acme")
    create(s, company="beta", token="tok-beta")
    return s


def test_default_user_names():
    assert default_user_of("user_acme") == ["acme", "user_acme"]
    assert default_user_of("acme") == ["acme"]
    assert default_user_of("user_") == ["user_"]
    assert default_user_of("bob@example.com") == []


@pytest.mark.parametrize("tenancy", TENANCIES)
def test_a_user_is_recorded_with_its_maker_and_refused_to_others_even_in_check_mode(grafana, tmp_path, tenancy):
    s = two(grafana, tmp_path, tenancy)
    add_user(s, "bob", company="acme")
    bob = grafana.user_by_login("bob")
    record = owners_of(s.secrets_dir)
    assert record[str(bob["id"])] == {"company": "acme", "login": "bob"}
    assert record[str(grafana.user_by_login("user_beta")["id"])] == {"company": "beta", "login": "user_beta"}
    writes = len(grafana.writes())
    for check in (True, False):
        with pytest.raises(
            ProvisioningError,
            match=r"Grafana user bob belongs to company acme \(recorded as its maker\), not to company beta",
        ):
            add_user(s, "bob", company="beta", check=check, user_password="another password")
    assert len(grafana.writes()) == writes and grafana.check_password("bob", "correct horse battery")
    # the record follows the user id: a login renamed (as the user may do itself) keeps its owner
    api(grafana, "PUT", f"/api/users/{bob['id']}", json={"login": "bobby"})
    with pytest.raises(ProvisioningError, match="Grafana user bobby belongs to company acme"):
        add_user(s, "bobby", company="beta")
    assert not holds(grafana, s, "beta", "bobby")
    mode = (s.secrets_dir / RECORD_NAME).stat().st_mode & 0o777
    assert mode == 0o600 and not list(s.secrets_dir.glob(f".{RECORD_NAME}.*"))


@pytest.mark.parametrize("tenancy", TENANCIES)
def test_another_companys_default_user_deployed_or_ours_is_refused(grafana, tmp_path, tenancy):
    s = two(grafana, tmp_path, tenancy)
    create(s, company="gamma", token="tok-gamma")
    # the deployed default user of gamma: login "gamma", "gamma Default", in gamma, no record
    gamma = hand_made_user(grafana, "gamma", name="gamma Default")
    hold(grafana, s, "gamma", gamma)
    # a default user of a company that lost its record entry (restored secrets) is still refused
    (s.secrets_dir / RECORD_NAME).unlink()
    for login, owner in (("user_beta", "beta"), ("gamma", "gamma")):
        with pytest.raises(
            ProvisioningError,
            match=rf"Grafana user {login} belongs to company {owner} \(the default user of {owner}\), not to company acme",
        ):
            add_user(s, login, company="acme")
        assert not holds(grafana, s, "acme", login)
    # gamma's own run adopts (and records) its deployed default user
    add_user(s, "gamma", company="gamma", user_password="gamma new password")
    assert grafana.check_password("gamma", "gamma new password")
    assert owners_of(s.secrets_dir)[str(gamma)]["company"] == "gamma"


@pytest.mark.parametrize("tenancy", TENANCIES)
def test_a_deployed_user_is_attributed_by_its_membership(grafana, tmp_path, tenancy):
    """A user made by the deployed add_grafana_user_to_team.yml ("acme User", member of acme)."""
    s = two(grafana, tmp_path, tenancy)
    old = hand_made_user(grafana, "jdoe", name="acme User", password="deployed-password")
    hold(grafana, s, "acme", old)
    with pytest.raises(
        ProvisioningError, match=r"belongs to company acme \(the only company holding it, team or organisation acme\)"
    ):
        add_user(s, "jdoe", company="beta")
    assert grafana.check_password("jdoe", "deployed-password") and grafana.users[old]["name"] == "acme User"
    result = add_user(s, "jdoe", company="acme", user_password="acme new password")
    assert grafana.check_password("jdoe", "acme new password")
    assert any(
        "Grafana user jdoe recorded as company acme's (the only company holding it" in n for n in result["notes"]
    )
    assert owners_of(s.secrets_dir)[str(old)] == {"company": "acme", "login": "jdoe"}


@pytest.mark.parametrize("tenancy", TENANCIES)
def test_a_user_held_by_two_companies_is_nobodys_to_change_and_is_deleted_by_the_last(grafana, tmp_path, tenancy):
    """The state an older version left after the takeover: bob in acme and in beta, no record."""
    s = two(grafana, tmp_path, tenancy)
    create(s, company="gamma", token="tok-gamma")
    bob = hand_made_user(grafana, "bob", password="bob-password")
    hold(grafana, s, "acme", bob)
    hold(grafana, s, "beta", bob)
    with pytest.raises(ProvisioningError, match="held by companies acme, beta and none of them is known as its maker"):
        add_user(s, "bob", company="gamma")
    result = add_user(s, "bob", company="beta", user_password="beta wants this")
    assert grafana.check_password("bob", "bob-password") and grafana.users[bob]["email"] == "bob@example.com"
    assert any("its password, name and email are left alone" in n for n in result["notes"])
    assert str(bob) not in owners_of(s.secrets_dir)
    kept = actions.run("company_absent", company="acme", user_login="bob", settings=s)
    assert grafana.user_by_login("bob") is not None and holds(grafana, s, "beta", "bob")
    assert "Grafana user bob is still held by company beta: kept (only removed from company acme)" in kept["notes"]
    assert not any(c.startswith("delete user") for c in kept["changes"])
    # now beta alone holds bob: it owns it, and deleting beta with bob deletes the user
    add_user(s, "bob", company="beta", user_password="beta wants this")
    assert grafana.check_password("bob", "beta wants this")
    gone = actions.run("company_absent", company="beta", user_login="bob", settings=s)
    assert "delete user bob" in gone["changes"] and grafana.user_by_login("bob") is None
    assert str(bob) not in owners_of(s.secrets_dir)


@pytest.mark.parametrize("tenancy", TENANCIES)
def test_deleting_a_company_never_deletes_another_companys_user(grafana, tmp_path, tenancy):
    s = two(grafana, tmp_path, tenancy)
    add_user(s, "carol", company="beta")
    carol = grafana.user_by_login("carol")["id"]
    check = actions.run("company_absent", company="acme", user_login="carol", settings=s, check=True)
    assert "delete user carol" not in check["changes"]
    result = actions.run("company_absent", company="acme", user_login="carol", settings=s)
    assert (
        "Grafana user carol belongs to company beta (recorded as its maker): kept (only removed from company acme)"
        in result["notes"]
    )
    assert grafana.user_by_login("carol")["id"] == carol and holds(grafana, s, "beta", "carol")
    assert owners_of(s.secrets_dir)[str(carol)]["company"] == "beta"
    # a Grafana server admin is nobody's user: neither added nor deleted
    with pytest.raises(ProvisioningError, match="Grafana user admin is a Grafana server admin"):
        add_user(s, "admin", company="beta", user_password="take the admin")
    assert grafana.check_password("admin", ADMIN[1])
    kept = actions.run("company_absent", company="beta", user_login="admin", settings=s)
    assert "Grafana user admin is a Grafana server admin: kept (only removed from company beta)" in kept["notes"]
    assert grafana.user_by_login("admin") is not None


@pytest.mark.parametrize("tenancy", TENANCIES)
def test_a_free_user_is_adopted_and_a_default_user_taken_before_is_refused_at_creation(grafana, tmp_path, tenancy):
    s = two(grafana, tmp_path, tenancy)
    free = hand_made_user(grafana, "dave", password="hand-made-password")
    add_user(s, "dave", company="beta", user_password="beta sets this")
    assert grafana.check_password("dave", "beta sets this") and owners_of(s.secrets_dir)[str(free)]["company"] == "beta"
    # user_delta, taken by acme before company delta exists: delta's creation stops before any write
    add_user(s, "user_delta", company="acme")
    writes = len(grafana.writes())
    with pytest.raises(ProvisioningError, match="Grafana user user_delta belongs to company acme"):
        create(s, company="delta", token="tok-delta")
    assert len(grafana.writes()) == writes and grafana.team_by_name("delta") is None


def test_a_login_that_is_another_users_email_and_a_broken_record_are_refused(grafana, tmp_path):
    s = two(grafana, tmp_path, "team")
    hand_made_user(grafana, "erin", email="frank")  # Grafana's lookup matches logins and emails
    writes = len(grafana.writes())
    with pytest.raises(ProvisioningError, match="login frank is the email of Grafana user erin"):
        add_user(s, "frank", company="beta")
    (s.secrets_dir / RECORD_NAME).write_text(json.dumps({"1": "acme"}))
    with pytest.raises(ProvisioningError, match=f"{RECORD_NAME} is not a record of Grafana user owners"):
        add_user(s, "user_acme", company="acme")
    assert len(grafana.writes()) == writes


@pytest.mark.parametrize("tenancy", TENANCIES)
@pytest.mark.parametrize("racer", ["acme", "unrecorded"])
def test_a_user_made_meanwhile_by_another_run_is_not_adopted(grafana, tmp_path, tenancy, racer, monkeypatch):
    """Between beta's check and its POST /api/admin/users, another run makes `bob` (Grafana: 412):
    acme's add-user (recorded at once), or a run whose record is not written yet."""
    s = two(grafana, tmp_path, tenancy)
    real_call = Grafana.call
    raced = []

    def racing(self, method, path, **kwargs):
        if method == "POST" and path == "/api/admin/users" and not raced:
            raced.append(path)
            if racer == "acme":
                add_user(s, "bob", company="acme", user_password="acme-bob-password")
            else:
                hand_made_user(grafana, "bob", password="acme-bob-password")
        return real_call(self, method, path, **kwargs)

    monkeypatch.setattr(Grafana, "call", racing)
    expected = "belongs to company acme" if racer == "acme" else "user bob was made meanwhile by another run"
    with pytest.raises(ProvisioningError, match=expected):
        add_user(s, "bob", company="beta", user_password="beta-bob-password")
    assert raced and grafana.check_password("bob", "acme-bob-password") and not holds(grafana, s, "beta", "bob")
    assert str(grafana.user_by_login("bob")["id"]) not in {
        k for k, v in owners_of(s.secrets_dir).items() if v["company"] == "beta"
    }


def test_a_deployed_default_user_login_made_by_another_company_is_not_adopted(grafana, tmp_path):
    """acme added a user `delta` before company delta existed; delta's creation then makes its own
    default user user_delta instead of adopting acme's `delta` (named like a deployed default user)."""
    s = two(grafana, tmp_path, "team")
    add_user(s, "delta", company="acme", user_password="acme-delta-password")
    delta = grafana.user_by_login("delta")
    api(grafana, "PUT", f"/api/users/{delta['id']}", json={"name": "delta Default"})  # as the user may do
    result = create(s, company="delta", token="tok-delta")
    assert "Grafana user delta belongs to company acme (recorded as its maker): not adopted" in " ".join(
        result["notes"]
    )
    team = grafana.team_by_name("delta")["id"]
    assert delta["id"] not in grafana.team_members[team] and grafana.check_password("delta", "acme-delta-password")
    assert grafana.user_by_login("user_delta")["id"] in grafana.team_members[team]
