"""How the CLI fails: one line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click
from sqlalchemy.exc import SQLAlchemyError
from twilio.base.exceptions import TwilioRestException

from worker.settings import SettingsError

F = TypeVar("F", bound=Callable[..., Any])


def friendly_errors(func: F) -> F:
    """Turn the errors a user can cause, and a database or Twilio that refuses, into one line
    and exit code 1."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (ValueError, SettingsError) as exc:
            raise click.ClickException(str(exc)) from None
        except SQLAlchemyError as exc:
            click.echo(f"Error: database: {str(exc).splitlines()[0]}", err=True)
            sys.exit(1)
        except TwilioRestException as exc:
            code = f" (error {exc.code})" if exc.code else ""
            click.echo(f"Error: Twilio: HTTP {exc.status}{code}: {exc.msg}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
