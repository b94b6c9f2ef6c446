# Typed stand-ins for what the NixOS test driver puts in a testScript's scope, so `cargo xtask test` can
# type-check each assembled script offline, as the driver's own build does before any VM boots.
#
# Written for this project from the driver's signatures at nixos-26.05 (nixpkgs
# nixos/lib/test-driver/src/test_driver/driver.py `Driver.test_symbols`, and machine/__init__.py
# `BaseMachine`); it declares only what a test may call, with the same parameter names, types and defaults.
# A method missing here is one our scripts must not use until it is added from the upstream signature.
from collections.abc import Callable
from typing import NoReturn
from contextlib import AbstractContextManager
from unittest import TestCase


def _stub() -> NoReturn:
    raise NotImplementedError("type information for the NixOS test driver only")


class Machine:
    name: str

    def start(self) -> None:
        _stub()

    def shutdown(self) -> None:
        _stub()

    def crash(self) -> None:
        _stub()

    def reboot(self) -> None:
        _stub()

    def execute(
        self,
        command: str,
        check_return: bool = True,
        check_output: bool = True,
        timeout: int | None = 900,
    ) -> tuple[int, str]:
        _stub()

    def succeed(self, *commands: str, timeout: int | None = None) -> str:
        _stub()

    def fail(self, *commands: str, timeout: int | None = None) -> str:
        _stub()

    def wait_until_succeeds(self, command: str, timeout: int = 900) -> str:
        _stub()

    def wait_until_fails(self, command: str, timeout: int = 900) -> str:
        _stub()

    def systemctl(self, q: str, user: str | None = None) -> tuple[int, str]:
        _stub()

    def wait_for_unit(self, unit: str, user: str | None = None, timeout: int = 900) -> None:
        _stub()

    def get_unit_info(self, unit: str, user: str | None = None) -> dict[str, str]:
        _stub()

    def get_unit_property(self, unit: str, property: str, user: str | None = None) -> str:
        _stub()

    def require_unit_state(self, unit: str, require_state: str = "active") -> None:
        _stub()

    def start_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        _stub()

    def stop_job(self, jobname: str, user: str | None = None) -> tuple[int, str]:
        _stub()

    def wait_for_file(self, filename: str, timeout: int = 900) -> None:
        _stub()

    def wait_for_open_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        _stub()

    def wait_for_closed_port(self, port: int, addr: str = "localhost", timeout: int = 900) -> None:
        _stub()

    def wait_for_open_unix_socket(self, addr: str, is_datagram: bool = False, timeout: int = 900) -> None:
        _stub()

    def copy_from_host(self, source: str, target: str) -> None:
        _stub()

    def copy_from_machine(self, source: str, target_dir: str = "") -> None:
        _stub()

    def sleep(self, secs: int) -> None:
        _stub()


def start_all() -> None:
    _stub()


def join_all() -> None:
    _stub()


def subtest(name: str) -> AbstractContextManager[None]:
    _stub()


def retry(fn: Callable[[bool], bool], timeout_seconds: int = 900) -> None:
    _stub()


# unittest's assertions, as the driver's `t` (an AssertionTester, a TestCase subclass).
t: TestCase = TestCase()
