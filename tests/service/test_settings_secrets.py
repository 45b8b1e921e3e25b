"""Secrets: refused as defaults in production, kept out of reprs; state files private."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from sqlalchemy import text

from service.settings import DEV_INTEGRATION_SECRET, Settings
from service.stack import ChildProcess, free_port
from service.state import Resources
from service.store.db import make_engine


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_production_refuses_the_default_integration_secret() -> None:
    with pytest.raises(ValidationError, match="integration_secret"):
        Settings(environment="production")
    with pytest.raises(ValidationError, match=r"signing_secrets\[https://a.example\]"):
        Settings(
            environment="production",
            integration_secret=SecretStr("a-real-one"),
            signing_secrets={"https://a.example": SecretStr(DEV_INTEGRATION_SECRET)},
        )
    assert Settings(environment="production", integration_secret=SecretStr("a-real-one"))
    assert Settings().environment == "development"


def test_a_refusal_does_not_echo_the_secrets() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(environment="production", signing_secrets={"https://a.example": "hook-key-8"})
    assert "integration_secret" in str(refused.value)
    assert "hook-key-8" not in str(refused.value)


@pytest.mark.parametrize("part", ["serve", "worker"])
def test_the_service_refuses_to_start_in_production_with_the_default_secret(
    tmp_path: Path, part: str
) -> None:
    command = [part, "--port", str(free_port())] if part == "serve" else [part]
    env = {
        k: v for k, v in os.environ.items() if k not in ("INTEGRATION_SECRET", "SIGNING_SECRETS")
    }
    env |= {
        "ENVIRONMENT": "production",
        "SIGNING_SECRETS": "https://a.example=hook-key-9",
        "STATE_DIR": str(tmp_path / "state"),
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        # A plain traceback: the message is not wrapped across lines.
        "_TYPER_STANDARD_TRACEBACK": "1",
    }
    cli = Path(sys.executable).parent / "protocol-lab"
    done = subprocess.run(
        [str(cli), *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "refuses the development default" in output
    assert "hook-key-9" not in output
    assert not (tmp_path / "state").exists()


def test_the_environment_switch_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="refuses the development default"):
        Settings()
    monkeypatch.setenv("INTEGRATION_SECRET", "from-the-vault")
    assert Settings().integration_secret.get_secret_value() == "from-the-vault"
    monkeypatch.setenv("ENVIRONMENT", "staging")
    with pytest.raises(ValidationError, match="environment"):
        Settings()


def test_secrets_stay_out_of_reprs() -> None:
    secrets = ["int-secret-1", "tok-abc-123", "temporal-key-9", "hook-key-7", "pg-pass-5"]
    settings = Settings(
        integration_secret=SecretStr(secrets[0]),
        api_tokens={secrets[1]: ["admin"]},
        temporal_api_key=SecretStr(secrets[2]),
        signing_secrets={"https://hooks.example": SecretStr(secrets[3])},
        database_url=f"postgresql+asyncpg://app:{secrets[4]}@db/app",
    )
    for shown in (repr(settings), str(settings)):
        for secret in secrets:
            assert secret not in shown


async def test_the_sqlite_store_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "store.db"
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (x INTEGER)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _mode(path) == 0o600
        assert _mode(path.parent) == 0o700
        wal = path.with_name("store.db-wal")
        assert wal.exists()
        assert _mode(wal) == 0o600
    finally:
        await engine.dispose()


async def test_the_state_folder_is_created_private(tmp_path: Path) -> None:
    state = tmp_path / "state"
    resources = await Resources.open(Settings(state_dir=state))
    try:
        assert _mode(state) == 0o700
        assert _mode(state / "protocol-lab.db") == 0o600
    finally:
        await resources.close()


def test_the_stack_logs_and_its_children_files_are_private(tmp_path: Path) -> None:
    made = tmp_path / "made-by-child"
    child = ChildProcess(
        "probe",
        [sys.executable, "-c", f"print('hello'); open({str(made)!r}, 'w').close()"],
        tmp_path / "logs" / "probe.log",
    )
    child.start()
    assert child.process is not None
    assert child.process.wait(timeout=30) == 0
    assert _mode(tmp_path / "logs") == 0o700
    assert _mode(child.log_path) == 0o600
    assert _mode(made) == 0o600
    assert "hello" in child.log_path.read_text()
