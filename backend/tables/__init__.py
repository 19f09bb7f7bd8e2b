from backend.tables.catalog import PriceList, Product
from backend.tables.companies import Company
from backend.tables.users import Role, User

__all__ = ["Company", "PriceList", "Product", "Role", "User"]
