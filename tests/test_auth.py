"""Users file, password and token authentication, roles."""

from __future__ import annotations

import stat
import tomllib

import pytest

from twinview.security import auth
from twinview.security.auth import AuthError, Principal


@pytest.fixture
def users(tmp_path):
    path = tmp_path / "cfg" / "users.toml"
    auth.add_user("olga", "operator", "correct horse", path)
    auth.add_user("vic", "viewer", "v-pass", path)
    return path


def test_password_login_and_wrong_password(users):
    assert auth.authenticate("olga", "correct horse", path=users) == Principal("olga", "operator")
    for name, pw in (("olga", "Correct horse"), ("olga", ""), ("nobody", "correct horse"), ("vic", "correct horse")):
        with pytest.raises(AuthError, match="authentication failed"):
            auth.authenticate(name, pw, path=users)
    with pytest.raises(AuthError):
        auth.authenticate("olga", None, path=users)


def test_file_holds_hashes_not_secrets_and_is_private(users):
    token = auth.issue_token("olga", users, label="control room")
    text = users.read_text()
    assert "correct horse" not in text and "v-pass" not in text
    assert token not in text and token.split("_")[-1] not in text
    data = tomllib.loads(text)
    assert data["users"]["olga"]["password"].startswith("scrypt$")
    assert data["users"]["olga"]["tokens"][0]["hash"].startswith("sha256$")
    assert data["users"]["olga"]["tokens"][0]["label"] == "control room"
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    # the same password twice: different salts, different hashes
    auth.add_user("olga2", "operator", "correct horse", users)
    loaded = auth.load_users(users)
    assert loaded["olga"].password != loaded["olga2"].password


def test_token_login_revoke_and_owner(users):
    token = auth.issue_token("olga", users)
    assert token.startswith("tvt_")
    assert auth.authenticate(token=token, path=users) == Principal("olga", "operator")
    assert auth.authenticate("olga", token=token, path=users).role == "operator"
    with pytest.raises(AuthError):
        auth.authenticate("vic", token=token, path=users)  # not vic's token
    with pytest.raises(AuthError):
        auth.authenticate(token=token[:-1] + ("A" if token[-1] != "A" else "B"), path=users)
    token_id = auth.load_users(users)["olga"].tokens[0].id
    auth.revoke_token("olga", token_id, users)
    with pytest.raises(AuthError):
        auth.authenticate(token=token, path=users)


def test_token_only_user_cannot_log_in_with_an_empty_password(users):
    auth.add_user("robot", "operator", None, users)
    token = auth.issue_token("robot", users)
    assert auth.authenticate(token=token, path=users).name == "robot"
    for pw in ("", "x"):
        with pytest.raises(AuthError):
            auth.authenticate("robot", pw, path=users)


def test_role_changes_duplicates_and_bad_input(users):
    with pytest.raises(AuthError, match="already exists"):
        auth.add_user("olga", "admin", "x", users)
    auth.set_role("olga", "admin", users)
    assert auth.authenticate("olga", "correct horse", path=users).role == "admin"
    auth.set_password("olga", "new one", users)
    with pytest.raises(AuthError):
        auth.authenticate("olga", "correct horse", path=users)
    for bad_name in ("", "a b", "x" * 65, 'quote"name', "../etc"):
        with pytest.raises(AuthError):
            auth.add_user(bad_name, "viewer", "x", users)
    with pytest.raises(AuthError, match="unknown role"):
        auth.add_user("eve", "root", "x", users)
    auth.remove_user("vic", users)
    assert set(auth.load_users(users)) == {"olga"}


def test_roles_are_ordered():
    assert auth.role_at_least("admin", "operator") and auth.role_at_least("operator", "operator")
    assert not auth.role_at_least("viewer", "operator") and not auth.role_at_least("root", "viewer")
    assert Principal("a", "operator").can("viewer") and not Principal("a", "operator").can("admin")


def test_broken_files_and_hashes(tmp_path):
    bad = tmp_path / "users.toml"
    bad.write_text('[users.x]\nrole = "superuser"\n')
    with pytest.raises(AuthError, match="role"):
        auth.load_users(bad)
    bad.write_text("not toml [")
    with pytest.raises(AuthError, match="not valid TOML"):
        auth.load_users(bad)
    assert auth.load_users(tmp_path / "missing.toml") == {}
    for encoded in ("", "plain", "scrypt$1$1$1$xx$yy", "scrypt$99999999$8$1$AAAA$AAAA", "pbkdf2_sha256$0$AA$AA"):
        assert auth.verify_password("x", encoded) is False
    assert auth.verify("pw", auth.hash_password("pw"))


def test_default_location(monkeypatch, tmp_path):
    monkeypatch.setenv("TWINVIEW_USERS", str(tmp_path / "u.toml"))
    assert auth.default_users_path() == tmp_path / "u.toml"
    monkeypatch.delenv("TWINVIEW_USERS")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert auth.default_users_path() == tmp_path / "cfg" / "twinview" / "users.toml"
