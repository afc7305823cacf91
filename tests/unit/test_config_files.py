"""goleak_files: config files rendered into each start's {tmp}; a bad line is found when the config is made."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_settings import config_error, resolve

from pytest_goleak.errors import ConfigError
from pytest_goleak.service.config import Placeholders, ServiceConfig

CADDYFILE = """\
{
    admin 127.0.0.1:{port_admin}
    storage file_system {tmp}/data
}
:{port} {
    respond "{http.request.host} on {{port}}"
    templates { mime text/plain }
}
"""


def _config(tmp_path: Path, *lines: str, **fields: object) -> ServiceConfig:
    return ServiceConfig(binary=Path("svc"), base_dir=tmp_path, files=lines, **fields)  # type: ignore[arg-type]


def test_only_the_plugins_placeholders_are_filled_and_every_other_brace_is_kept(tmp_path: Path) -> None:
    (tmp_path / "Caddyfile.in").write_text(CADDYFILE)
    config = _config(tmp_path, "Caddyfile.in -> {tmp}/etc/Caddyfile", args="run --config {tmp}/etc/Caddyfile")
    run = tmp_path / "run"
    run.mkdir()
    placeholders = Placeholders(run, str(tmp_path))
    config.render_files(placeholders)
    written = (run / "etc" / "Caddyfile").read_text()
    port, admin = placeholders["port"], placeholders["port_admin"]
    assert written == (
        CADDYFILE.replace("{port_admin}", admin)
        .replace("{tmp}", str(run))
        .replace(":{port} {", f":{port} {{")
        .replace("{{port}}", "{port}")
    )
    assert "{http.request.host}" in written and "templates { mime text/plain }" in written


def test_a_port_named_only_in_a_file_is_one_the_service_was_told(tmp_path: Path) -> None:
    (tmp_path / "app.toml").write_text('[debug]\naddress = "127.0.0.1:{port_debug}"\n')
    told = _config(tmp_path, "app.toml -> {tmp}/app.toml", pprof_url="http://127.0.0.1:{port_debug}/debug/pprof/")
    assert told.untold_ports() == []
    untold = ServiceConfig(binary=Path("svc"), pprof_url="http://127.0.0.1:{port_debug}/debug/pprof/")
    assert untold.untold_ports() == [("pprof_url", "port_debug")]


def test_lines_from_the_ini_are_read_when_the_settings_are(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "server.yml").write_text("listen: {addr}\n")
    resolved = resolve(tmp_path, ini={"goleak_binary": "svc", "goleak_files": ["conf/server.yml -> {tmp}/server.yml"]})
    assert resolved.service is not None
    (template,) = resolved.service.templates
    assert template.source == tmp_path / "conf" / "server.yml"
    assert template.names == ["tmp", "addr"]


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("server.yml", "is not SOURCE -> DEST; e.g. config.toml.in -> {tmp}/config.toml"),
        ("server.yml -> /etc/server.yml", "DEST must be under {tmp}"),
        ("server.yml -> {tmp}/s.yml   ; SOURCE -> {tmp}/DEST", "put comments on their own line"),
        ("server.yml -> {tmp}/../server.yml", "DEST must be under {tmp}"),
        ("server.yml -> {tmp}/{nope}.yml", "unknown placeholder {nope}"),
        ("missing.yml -> {tmp}/m.yml", "missing.yml cannot be read (No such file or directory)"),
        ("binary.dat -> {tmp}/b", "is not UTF-8 text"),
    ],
)
def test_a_bad_line_is_one_error_naming_the_option(tmp_path: Path, line: str, said: str) -> None:
    (tmp_path / "server.yml").write_text("listen: {addr}\n")
    (tmp_path / "binary.dat").write_bytes(b"\xff\xfe\x00")
    message = config_error(tmp_path, ini={"goleak_binary": "svc", "goleak_files": [line]})
    assert message.startswith("goleak_files") and said in message, message


def test_a_factory_may_give_the_lines_as_one_string(tmp_path: Path) -> None:
    (tmp_path / "a.conf").write_text("port={port}")
    config = _config(tmp_path)
    assert config.templates == ()
    config = ServiceConfig(binary=Path("svc"), base_dir=tmp_path, files="a.conf -> {tmp}/a.conf")  # type: ignore[arg-type]
    assert [t.target for t in config.templates] == ["{tmp}/a.conf"]
    with pytest.raises(ConfigError, match=r"goleak_service_factory\(files=...\)"):
        ServiceConfig(binary=Path("svc"), base_dir=tmp_path, files=("a.conf -> elsewhere",))


def test_over_a_unix_socket_a_url_may_have_an_empty_host_and_no_port_is_untold(tmp_path: Path) -> None:
    config = ServiceConfig(
        binary=Path("svc"), args="run", unix_socket="{tmp}/admin.sock", pprof_url="http:///debug/pprof/"
    )
    assert config.untold_ports() == []
    with pytest.raises(ConfigError, match="is not an http:// URL"):
        ServiceConfig(binary=Path("svc"), unix_socket="{tmp}/a.sock", pprof_url="https://localhost/debug/pprof/")
    with pytest.raises(ConfigError, match="unknown placeholder"):
        ServiceConfig(binary=Path("svc"), unix_socket="{temp}/a.sock")
