"""medmij_lists: the four MedMij lists (ZAL, OCL, GNL, Whitelist; plus the ZAKL) as a standalone, typed library.

Parsing is defused and validated against this project's own XSDs (protocol doc §2); :class:`ListService` fetches,
caches and refreshes the lists (§2.7). No web framework is imported here.
"""

from medmij_lists.demo import write_demo_lists
from medmij_lists.errors import ListError
from medmij_lists.errors import ListFetchError
from medmij_lists.errors import ListRollbackError
from medmij_lists.errors import ListValidationError
from medmij_lists.models import Abonneren
from medmij_lists.models import Gegevensdienst
from medmij_lists.models import GegevensdienstNaam
from medmij_lists.models import GegevensdienstNamenLijst
from medmij_lists.models import Interfaceversie
from medmij_lists.models import KoppelGegevensdienst
from medmij_lists.models import KoppelZorgaanbieder
from medmij_lists.models import ListKind
from medmij_lists.models import MedMijList
from medmij_lists.models import OAuthClient
from medmij_lists.models import OAuthClientList
from medmij_lists.models import Systeemrol
from medmij_lists.models import Whitelist
from medmij_lists.models import WhitelistModel
from medmij_lists.models import Zorgaanbieder
from medmij_lists.models import Zorgaanbiederskoppellijst
from medmij_lists.models import Zorgaanbiederslijst
from medmij_lists.parser import MAX_LIST_BYTES
from medmij_lists.parser import detect_kind
from medmij_lists.parser import parse_file
from medmij_lists.parser import parse_list
from medmij_lists.service import ListService
from medmij_lists.service import ListStatus

__all__ = [
    "MAX_LIST_BYTES",
    "Abonneren",
    "GegevensdienstNaam",
    "GegevensdienstNamenLijst",
    "Gegevensdienst",
    "Interfaceversie",
    "KoppelGegevensdienst",
    "KoppelZorgaanbieder",
    "ListError",
    "ListFetchError",
    "ListKind",
    "ListRollbackError",
    "ListService",
    "ListStatus",
    "ListValidationError",
    "MedMijList",
    "OAuthClient",
    "OAuthClientList",
    "Systeemrol",
    "Whitelist",
    "WhitelistModel",
    "Zorgaanbieder",
    "Zorgaanbiederskoppellijst",
    "Zorgaanbiederslijst",
    "detect_kind",
    "parse_file",
    "parse_list",
    "write_demo_lists",
]
