"""Synthetic people: students with their families, staff, and students' demographics.

Names come from Faker's en_US word lists (with their frequencies), read once; people are then
drawn with a seeded numpy Generator in vectorized batches — calling Faker per person would take
hours for a million students. The district's own flavor (name, e-mail domains, area codes,
birthplaces) is derived from the seed, so the next-day evolution can draw more people in the
same style.

Every ``draw_*`` function returns frames shaped for :data:`rows.INSERTS`; ``stamp(n)`` gives the
``date_last_modified`` of n new rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from faker import Faker
from faker.providers.internet.en_US import Provider as InternetProvider
from faker.providers.person.en_US import Provider as PersonProvider

GRADES = ("KG", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12")
GRADE_INDEX = {grade: i for i, grade in enumerate(GRADES)}
Stamp = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class Names:
    """Faker's en_US first and last names with their frequencies, as numpy arrays."""

    female: np.ndarray
    female_p: np.ndarray
    male: np.ndarray
    male_p: np.ndarray
    last: np.ndarray
    last_p: np.ndarray

    def first_names(self, rng: np.random.Generator, female: np.ndarray) -> np.ndarray:
        """One first name per person, by sex."""
        out = np.empty(len(female), dtype=object)
        out[female] = rng.choice(self.female, size=int(female.sum()), p=self.female_p)
        out[~female] = rng.choice(self.male, size=int((~female).sum()), p=self.male_p)
        return out

    def last_names(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n family names, common ones more often."""
        return rng.choice(self.last, size=n, p=self.last_p)


def _weighted(words: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    weights = np.array(list(words.values()), dtype=float)
    return np.array(list(words), dtype=object), weights / weights.sum()


@lru_cache(maxsize=1)
def names() -> Names:
    """The en_US name lists, loaded once per process."""
    p = PersonProvider
    return Names(
        *_weighted(p.first_names_female), *_weighted(p.first_names_male), *_weighted(p.last_names)
    )


@dataclass(frozen=True)
class Style:
    """District-wide flavor derived from the seed: its name, domains, area codes, birthplaces."""

    name: str
    slug: str
    state: str
    area_codes: tuple[int, ...]
    birth_cities: tuple[str, ...]

    @property
    def staff_domain(self) -> str:
        return f"{self.slug}.k12.us"

    @property
    def student_domain(self) -> str:
        return f"students.{self.slug}.k12.us"

    def phones(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n ten-digit phone numbers in the district's area codes (as integers)."""
        area = rng.choice(np.array(self.area_codes, dtype=np.int64), size=n)
        return area * 10_000_000 + rng.integers(200, 1000, n) * 10_000 + rng.integers(0, 10_000, n)


@lru_cache(maxsize=8)
def district_style(seed: int) -> Style:
    """The style of the district generated from ``seed`` (the only place Faker itself runs)."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    city = fake.city()
    return Style(
        name=f"{city} Unified School District",
        slug=re.sub(r"[^a-z]", "", city.lower()),
        state=fake.state_abbr(include_territories=False, include_freely_associated_states=False),
        area_codes=tuple(fake.unique.random_int(201, 989) for _ in range(3)),
        birth_cities=(city, *(fake.city() for _ in range(24))),
    )


def grade_index(grades: np.ndarray) -> np.ndarray:
    """0 for KG up to 12 for grade 12."""
    return pd.Series(grades).map(GRADE_INDEX).to_numpy(dtype=np.int64)


def birth_dates(rng: np.random.Generator, grades: np.ndarray, start_year: int) -> np.ndarray:
    """Birth dates consistent with grade: a kindergartner is 5 on September 1 of ``start_year``."""
    years = start_year - 6 - grade_index(grades)
    sept_2 = (years - 1970).astype("datetime64[Y]").astype("datetime64[M]") + 8
    return sept_2.astype("datetime64[D]") + 1 + rng.integers(0, 365, len(grades))


def _contacts_of(rng: np.random.Generator, n_families: int) -> pd.DataFrame:
    """Per family one or two guardians and sometimes an emergency-only relative."""
    guardians = 1 + (rng.random(n_families) < 0.75)
    relative = rng.random(n_families) < 0.25
    per_family = guardians + relative
    family = np.repeat(np.arange(n_families), per_family)
    slot = np.arange(len(family)) - np.repeat(np.cumsum(per_family) - per_family, per_family)
    is_relative = slot == guardians[family]
    first = rng.choice(["mother", "father", "guardian", "grandparent"], n_families,
                       p=[0.62, 0.25, 0.08, 0.05])[family]
    second = np.select([first == "mother", first == "father"], ["father", "mother"], "grandparent")
    second = np.where(rng.random(len(family)) < 0.1, "stepparent", second)
    kin = rng.choice(["aunt", "uncle", "grandparent", "neighbor", "family friend"], len(family))
    relationship = np.where(is_relative, kin, np.where(slot == 0, first, second))
    n = len(family)
    return pd.DataFrame({
        "family": family,
        "relationship": relationship,
        "role": np.select([is_relative, np.isin(relationship, ["mother", "father", "stepparent"])],
                          ["relative", "parent"], "guardian"),
        "is_guardian": ~is_relative,
        "emergency_contact": is_relative | (slot == 0) | (rng.random(n) < 0.8),
        "custodial": ~is_relative & (relationship != "stepparent"),
        "pickup_allowed": ~is_relative | (rng.random(n) < 0.7),
        "contact_order": slot + 1,
        "female": np.where(np.isin(relationship, ["mother", "aunt"]), True,
                           np.where(np.isin(relationship, ["father", "uncle"]), False,
                                    rng.random(n) < 0.5)),
        "own_name": (slot > 0) & (rng.random(n) < np.where(is_relative, 0.6, 0.2)),
    })


def draw_families(
    rng: np.random.Generator, style: Style, *, student_nos: np.ndarray, grades: np.ndarray,
    org_nos: int | np.ndarray, first_contact_no: int, start_year: int, stamp: Stamp,
) -> dict[str, pd.DataFrame]:
    """Students with their households: siblings share a family name and contacts.

    ``org_nos`` is each student's school (or one school for all); contacts start with the
    school of one of their students (:func:`rows.refresh_contact_orgs` settles the rest).
    Returns ``users`` (students then contacts), ``student_contacts`` and ``demographics``.
    """
    pool = names()
    n = len(student_nos)
    sizes = rng.choice([1, 2, 3], size=n, p=[0.55, 0.33, 0.12])
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
    sizes[-1] -= sizes.sum() - n
    family = np.empty(n, dtype=np.int64)
    family[rng.permutation(n)] = np.repeat(np.arange(len(sizes)), sizes)
    family_name = pool.last_names(rng, len(sizes))
    org_nos = np.broadcast_to(np.asarray(org_nos, dtype=np.int64), (n,))
    family_org = np.empty(len(sizes), dtype=np.int64)
    family_org[family] = org_nos
    household_phone = style.phones(rng, len(sizes))

    female = rng.random(n) < 0.49
    born = birth_dates(rng, grades, start_year)
    students = pd.DataFrame({
        "no": student_nos, "role": "student", "given_name": pool.first_names(rng, female),
        "family_name": family_name[family],
        "middle_name": np.where(rng.random(n) < 0.6, pool.first_names(rng, female), None),
        "identifier": (1_000_000 + student_nos).astype(str),
        "state_id": ((student_nos * 48271) % 2_147_483_647 + 1_000_000_000).astype(str),
        "email_domain": style.student_domain, "phone": pd.array([None] * n, dtype="Int64"),
        "sms": pd.array([None] * n, dtype="Int64"), "grade": grades, "org_no": org_nos,
        "org2_no": pd.array([None] * n, dtype="Int64"),
        "grad_year": start_year + 13 - grade_index(grades), "birth_date": born, "dlm": stamp(n),
    })

    contacts = _contacts_of(rng, len(sizes))
    m = len(contacts)
    contacts["no"] = first_contact_no + np.arange(m)
    own = contacts["own_name"].to_numpy()
    contact_family_name = family_name[contacts["family"]]
    contact_family_name[own] = pool.last_names(rng, int(own.sum()))
    guardian_phone = np.where(contacts["is_guardian"], household_phone[contacts["family"]],
                              style.phones(rng, m))
    contact_users = pd.DataFrame({
        "no": contacts["no"], "role": contacts["role"],
        "given_name": pool.first_names(rng, contacts["female"].to_numpy()),
        "family_name": contact_family_name, "middle_name": None, "identifier": None,
        "state_id": None,
        "email_domain": rng.choice(np.array(InternetProvider.free_email_domains, dtype=object), m),
        "phone": guardian_phone, "sms": style.phones(rng, m), "grade": None,
        "org_no": family_org[contacts["family"]],
        "org2_no": pd.array([None] * m, dtype="Int64"),
        "grad_year": pd.array([None] * m, dtype="Int64"),
        "birth_date": np.full(m, np.datetime64("NaT"), dtype="datetime64[D]"), "dlm": stamp(m),
    })

    links = pd.DataFrame({"student_no": student_nos, "family": family}).merge(
        contacts.rename(columns={"no": "contact_no"}), on="family"
    )
    links = links[["student_no", "contact_no", "relationship", "is_guardian", "emergency_contact",
                   "custodial", "pickup_allowed", "contact_order"]]
    links["dlm"] = stamp(len(links))
    return {
        "users": pd.concat([students, contact_users], ignore_index=True),
        "student_contacts": links,
        "demographics": draw_demographics(rng, style, student_nos, female, born, stamp),
    }


RACES = ("american_indian_or_alaska_native", "asian", "black_or_african_american",
         "native_hawaiian_or_other_pacific_islander", "white")
RACE_SHARES = (0.01, 0.06, 0.15, 0.005, 0.725)
BIRTH_COUNTRIES = ("MX", "IN", "CN", "PH", "SV", "VN", "GT", "HN", "KR", "UA")


def draw_demographics(
    rng: np.random.Generator, style: Style, student_nos: np.ndarray, female: np.ndarray,
    born: np.ndarray, stamp: Stamp,
) -> pd.DataFrame:
    """One demographics row per student: sex, race flags, ethnicity and birthplace."""
    n = len(student_nos)
    race = rng.choice(len(RACES), size=n, p=np.array(RACE_SHARES) / sum(RACE_SHARES))
    two_or_more = rng.random(n) < 0.05
    us_born = rng.random(n) < 0.92
    local = rng.random(n) < 0.75
    sex = np.where(female, "female", "male").astype(object)
    sex[rng.random(n) < 0.01] = rng.choice(["other", "unspecified"])
    frame = pd.DataFrame({"no": student_nos, "dlm": stamp(n), "birth_date": born, "sex": sex})
    for i, column in enumerate(RACES):
        frame[column] = (race == i) & ~two_or_more
    frame["demographic_race_two_or_more_races"] = two_or_more
    frame["hispanic_or_latino_ethnicity"] = rng.random(n) < 0.27
    frame["country_of_birth_code"] = np.where(us_born, "US", rng.choice(BIRTH_COUNTRIES, n))
    frame["state_of_birth_abbreviation"] = np.where(us_born & local, style.state, None)
    frame["city_of_birth"] = np.where(
        us_born & local, rng.choice(np.array(style.birth_cities, dtype=object), n), None
    )
    frame["public_school_residence_status"] = np.where(rng.random(n) < 0.96, "01652", "01653")
    return frame


def draw_staff(
    rng: np.random.Generator, style: Style, *, nos: np.ndarray, roles: np.ndarray,
    org_nos: np.ndarray, org2_nos: np.ndarray | None = None, stamp: Stamp,
) -> pd.DataFrame:
    """Staff members (teachers, aides, counselors, principals, administrators) as user rows."""
    pool = names()
    n = len(nos)
    female = rng.random(n) < 0.72
    return pd.DataFrame({
        "no": nos, "role": roles, "given_name": pool.first_names(rng, female),
        "family_name": pool.last_names(rng, n),
        "middle_name": np.where(rng.random(n) < 0.3, pool.first_names(rng, female), None),
        "identifier": (500_000 + nos).astype(str),
        "state_id": ((nos * 16807) % 2_147_483_647 + 1_000_000_000).astype(str),
        "email_domain": style.staff_domain, "phone": style.phones(rng, n),
        "sms": pd.array([None] * n, dtype="Int64"), "grade": None, "org_no": org_nos,
        "org2_no": pd.array(org2_nos if org2_nos is not None else [None] * n, dtype="Int64"),
        "grad_year": pd.array([None] * n, dtype="Int64"),
        "birth_date": np.full(n, np.datetime64("NaT"), dtype="datetime64[D]"), "dlm": stamp(n),
    })
