"""Configuration: precedence, validation messages that name field, value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from nvr.config import FIELDS, ConfigError, load, reference_markdown


def test_defaults() -> None:
    cfg = load(env={})
    assert cfg["http.port"] == 8080
    assert cfg["rtsp.port"] == 8554
    assert cfg.data_dir == Path("./nvr-data").resolve()
    assert cfg.database_url == f"sqlite:///{Path('./nvr-data').resolve() / 'nvr.db'}"
    settings = cfg.store_settings()
    assert settings.dirs[0].path == Path("./nvr-data/media").resolve()
    assert settings.segment_seconds == 60


def test_precedence_file_env_flag(tmp_path: Path) -> None:
    f = tmp_path / "nvr.toml"
    f.write_text('data_dir = "/srv/a"\n[http]\nport = 9000\n[rtsp]\nport = 9554\n')
    cfg = load(config_file=f, env={"NVR_HTTP_PORT": "9100"}, flags={"rtsp.port": "9600"})
    assert cfg["data_dir"] == "/srv/a"
    assert cfg["http.port"] == 9100
    assert cfg["rtsp.port"] == 9600
    assert cfg.sources["http.port"] == "NVR_HTTP_PORT"


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        (
            {"NVR_HTTP_PORT": "eighty"},
            "invalid http.port = 'eighty' from environment NVR_HTTP_PORT",
        ),
        ({"NVR_RTSP_PORT": "70000"}, "must be an integer from 1 to 65535"),
        ({"NVR_LOG_LEVEL": "loud"}, "must be one of debug, info, warning, error"),
        ({"NVR_STORAGE_CHECKPOINT_SECONDS": "5"}, "storage.checkpoint_seconds"),
        ({"NVR_STORAGE_MIN_FREE_BYTES": "lots"}, "storage.min_free_bytes"),
    ],
)
def test_bad_values_name_field_value_and_allowed(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(env=env)
    assert fragment in str(err.value)
    assert "must be" in str(err.value)


def test_sizes_accept_units(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        '[storage]\nmin_free_bytes = "2G"\n[[storage.dirs]]\npath = "/m1"\nmax_bytes = "500M"\n'
    )
    cfg = load(config_file=f, env={})
    d = cfg.store_settings().dirs[0]
    assert d.max_bytes == 500 * 1024**2
    assert d.min_free_bytes == 2 * 1024**3


def test_unknown_key_and_bad_toml(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text("[http]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'http\.prot'"):
        load(config_file=f, env={})
    f.write_text("[http\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(config_file=f, env={})
    with pytest.raises(ConfigError, match="does not exist"):
        load(config_file=tmp_path / "missing.toml", env={})


def test_storage_dir_entry_validated(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[[storage.dirs]]\npath = "/m"\nsize = 3\n')
    with pytest.raises(ConfigError, match=r"storage.dirs\[0\].*unknown keys \['size'\]"):
        load(config_file=f, env={})


def test_reference_lists_every_field() -> None:
    table = reference_markdown()
    for f in FIELDS:
        assert f"`{f.key}`" in table


def test_readme_reference_is_current() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert reference_markdown() in readme, "README config reference is stale: regenerate it"
