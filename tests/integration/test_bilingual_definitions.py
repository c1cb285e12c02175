"""The organisation and campaign files carry every name in both languages; loading refuses a
file that lacks one, naming the file and the item, and writes nothing."""

from __future__ import annotations

import copy
import tomllib

import pytest
from sqlalchemy import select

from engine.errors import ConfigError
from engine.models import Campaign, Category, Unit
from engine.organisation import load_organisation, upsert_campaign
from engine.settings import PROJECT_ROOT


def _read(path: str) -> dict:
    with (PROJECT_ROOT / path).open("rb") as handle:
        return tomllib.load(handle)


ORG = _read("config/organisation.toml")
CAMPAIGN = _read("config/campaigns/consultation-2005.toml")


def test_the_sample_bureau_exists_in_both_languages(session):
    luohe = session.scalars(select(Unit).where(Unit.code == "luohe-station")).one()
    assert (luohe.name, luohe.name_zh) == ("Luohe Police Station", "罗河派出所")
    category = session.scalars(
        select(Category).where(Category.code == "public_security_management")
    ).one()
    assert (category.name, category.name_zh) == ("Public security management", "治安管理")
    campaign = session.scalars(select(Campaign)).first()
    assert campaign.name_zh == "2005年走访征求意见活动"


def test_a_unit_without_its_chinese_name_is_refused(uow):
    data = copy.deepcopy(ORG)
    data["units"][3]["name"] = {"en": "Inspection Office"}
    with pytest.raises(ConfigError, match=r"org.toml: unit 'inspection': name: title lacks zh_CN"):
        load_organisation(uow, data, source="org.toml")


def test_a_category_with_a_plain_name_is_refused_and_nothing_is_written(uow, session):
    data = copy.deepcopy(CAMPAIGN)
    data["code"] = "consultation-2006"
    data["number_prefix"] = "2006"
    data["categories"][1]["name"] = "Service to the economy"
    with pytest.raises(ConfigError, match=r"category 'service_economy': name: title must give"):
        upsert_campaign(uow, data, source="c.toml")
    session.rollback()
    assert (
        session.scalars(select(Campaign).where(Campaign.code == "consultation-2006")).first()
        is None
    )
