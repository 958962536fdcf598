"""course_utils.serving: the address a learner opens a served page at, on their machine or on a JupyterHub."""

from __future__ import annotations

import pytest

from course_utils.serving import page_address


def test_without_a_hub_the_page_is_opened_directly() -> None:
    assert page_address(8000, environ={}) == "http://127.0.0.1:8000/"
    assert page_address(8000, "::1", environ={"JUPYTERHUB_SERVICE_PREFIX": ""}) == "http://[::1]:8000/"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("/user/ada/", "/user/ada/proxy/8000/"),  # what JupyterHub sets
        ("/user/ada", "/user/ada/proxy/8000/"),
        ("/", "/proxy/8000/"),
    ],
)
def test_on_a_hub_the_page_is_opened_through_jupyter_server_proxy(prefix: str, expected: str) -> None:
    assert page_address(8000, environ={"JUPYTERHUB_SERVICE_PREFIX": prefix}) == expected


def test_the_environment_is_read_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    assert page_address(8123) == "/user/ada/proxy/8123/"
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX")
    assert page_address(8123) == "http://127.0.0.1:8123/"
