"""The users domain's rules alone: no store, no network."""

from __future__ import annotations

import pytest

from veche_kit.auth import Principal
from veche_kit.errors import BadUserInputError, ForbiddenError
from veche_users import domain
from veche_users.domain import Role

ADMIN = Principal("a1", frozenset({"CITIZEN", "ADMIN"}))
CITIZEN = Principal("c1", frozenset({"CITIZEN"}))


def _field_of(error: pytest.ExceptionInfo[BadUserInputError]) -> object:
    return error.value.extensions.get("field")


def test_emails_are_compared_trimmed_and_in_lower_case() -> None:
    assert domain.clean_email("  Anna@Example.RU ") == "anna@example.ru"
    with pytest.raises(BadUserInputError) as error:
        domain.clean_email("anna@localhost")
    assert _field_of(error) == "email"


@pytest.mark.parametrize(
    "password", ["short1", "onlyletterslong", "1234567890", "x" * (domain.MAX_PASSWORD + 1)]
)
def test_weak_passwords_are_refused(password: str) -> None:
    with pytest.raises(BadUserInputError) as error:
        domain.check_password(password, "anna@example.ru")
    assert _field_of(error) == "password"


def test_a_password_that_is_the_mailbox_name_is_refused() -> None:
    with pytest.raises(BadUserInputError, match="email"):
        domain.check_password("anna.petrova1", "anna.petrova1@example.ru")
    domain.check_password("correct-horse-7", "anna@example.ru")


def test_birth_years_are_checked_against_the_year_given() -> None:
    assert domain.clean_birth_year(None, 2026) is None
    assert domain.clean_birth_year(2026 - domain.MIN_AGE, 2026) == 2012
    assert domain.clean_birth_year(2026 - domain.MAX_AGE, 2026) == 1906
    for year in (2026 - domain.MIN_AGE + 1, 2026 - domain.MAX_AGE - 1):
        with pytest.raises(BadUserInputError):
            domain.clean_birth_year(year, 2026)


def test_phones_take_the_international_form() -> None:
    assert domain.clean_phone("8 (910) 123-45-67") == "+79101234567"
    assert domain.clean_phone("+7 910 123 45 67") == "+79101234567"
    with pytest.raises(BadUserInputError):
        domain.clean_phone("12345")


def test_skills_are_slugs_without_repeats() -> None:
    assert domain.clean_skills([" Potholes", "potholes", "lighting"]) == ["potholes", "lighting"]
    with pytest.raises(BadUserInputError):
        domain.clean_skills(["not a slug"])
    with pytest.raises(BadUserInputError):
        domain.clean_skills([])


def test_private_fields_are_for_the_user_themself_and_admins() -> None:
    domain.require_self_or_admin(CITIZEN, "c1")
    domain.require_self_or_admin(ADMIN, "c1")
    for caller in (None, Principal("c2", frozenset({"CITIZEN"}))):
        with pytest.raises(ForbiddenError):
            domain.require_self_or_admin(caller, "c1")


def test_an_official_is_granted_with_a_department_and_loses_it_when_revoked() -> None:
    grant = domain.role_fields(ADMIN, "c1", Role.OFFICIAL, grant=True, department_id="roads")
    assert grant == {"department_id": "roads"}
    assert domain.role_fields(ADMIN, "c1", Role.OFFICIAL, grant=False, department_id=None) == {
        "department_id": None
    }
    assert domain.role_fields(ADMIN, "c1", Role.SOLVER, grant=True, department_id=None) == {}
    with pytest.raises(BadUserInputError) as error:
        domain.role_fields(ADMIN, "c1", Role.OFFICIAL, grant=True, department_id=None)
    assert _field_of(error) == "departmentId"
    with pytest.raises(BadUserInputError):
        domain.role_fields(ADMIN, "c1", Role.SOLVER, grant=True, department_id="roads")


def test_citizen_stays_and_an_admin_keeps_their_own_admin_role() -> None:
    with pytest.raises(BadUserInputError):
        domain.role_fields(ADMIN, "c1", Role.CITIZEN, grant=False, department_id=None)
    with pytest.raises(ForbiddenError):
        domain.role_fields(ADMIN, "a1", Role.ADMIN, grant=False, department_id=None)
    assert domain.role_fields(ADMIN, "a2", Role.ADMIN, grant=False, department_id=None) == {}


def test_marking_read_names_a_bounded_number_of_ids() -> None:
    domain.check_mark_read(None)
    domain.check_mark_read(["n"] * domain.MAX_MARK_READ)
    with pytest.raises(BadUserInputError) as error:
        domain.check_mark_read(["n"] * (domain.MAX_MARK_READ + 1))
    assert _field_of(error) == "ids"


def test_a_reward_needs_a_title_a_cost_and_a_stock() -> None:
    assert domain.clean_reward("Билет в театр", 10, 0) == "Билет в театр"
    for title, cost, stock, field in (
        (None, 10, 1, "title"),
        ("T", 0, 1, "cost"),
        ("T", 1, -1, "stock"),
    ):
        with pytest.raises(BadUserInputError) as error:
            domain.clean_reward(title, cost, stock)
        assert _field_of(error) == field


def test_the_minimum_age_is_the_citys_setting() -> None:
    assert domain.clean_birth_year(2026 - 14, 2026, min_age=14) == 2012
    with pytest.raises(BadUserInputError, match="aged 14 and over"):
        domain.clean_birth_year(2026 - 13, 2026, min_age=14)
    assert domain.clean_birth_year(2026 - 16, 2026, min_age=16) == 2010
    with pytest.raises(BadUserInputError, match="aged 16 and over"):
        domain.clean_birth_year(2026 - 15, 2026, min_age=16)
