"""The demo city's reference data, shared by every service's demo seed.

Nothing in the code is Kaluga-specific: these are the rows `make run` loads
into empty stores. Each service keeps its own copy of what it needs (users:
districts and departments; issues: categories, routed to departments by id).
"""

from __future__ import annotations

from typing import NamedTuple


class District(NamedTuple):
    id: str
    name: str


class Department(NamedTuple):
    id: str
    name: str


class Category(NamedTuple):
    id: str
    name: str
    department_id: str


DISTRICTS = (
    District("leninsky", "Ленинский округ"),
    District("moskovsky", "Московский округ"),
    District("oktyabrsky", "Октябрьский округ"),
)

DEPARTMENTS = (
    Department("roads", "Управление дорожного хозяйства"),
    Department("housing", "Управление ЖКХ"),
    Department("landscaping", "Управление благоустройства"),
    Department("transport", "Управление транспорта"),
    Department("ecology", "Управление экологии"),
)

CATEGORIES = (
    Category("potholes", "Ямы на дорогах", "roads"),
    Category("road-signs", "Дорожные знаки и разметка", "roads"),
    Category("street-lighting", "Уличное освещение", "housing"),
    Category("heating", "Отопление и горячая вода", "housing"),
    Category("yards", "Благоустройство дворов", "landscaping"),
    Category("trees", "Деревья и газоны", "landscaping"),
    Category("public-transport", "Общественный транспорт", "transport"),
    Category("waste", "Мусор и свалки", "ecology"),
)
