"""axolotl's own refusals, restated so that fast `validate` finds them without importing axolotl.

axolotl's `validate_config` refuses configs through validators on its pydantic config model
(axolotl/utils/schemas/validation.py, config.py, peft.py, ...) and on the argument model of every plugin a
config lists (axolotl/integrations/*/args.py). Importing axolotl to run them costs ~15 s, so a user would
learn of a refusal only once the rented GPU starts. Each `Refusal` restates one of them: the validator's
name in axolotl, the keys it is about, when it refuses and what it says, in axolotl's own words so that the
user recognises the message. One module per source file of axolotl's: validation.py, config.py, models.py
(the other models), plugins.py; rule.py reads a config as axolotl's validators read it. The axolotl tier
checks every rule against the installed axolotl, config by config (tests/truth/test_truth_parity.py), and
accounts for every `raise` in axolotl's validators (tests/truth/refusal_inventory.py).
"""

from __future__ import annotations

from mft_recipes_axolotl.refusals import config, models, plugins, validation
from mft_recipes_axolotl.refusals.rule import REFUSED, AxolotlConfig, Refusal, refusal_problems

REFUSALS = validation.REFUSALS + config.REFUSALS + models.REFUSALS + plugins.REFUSALS

__all__ = ["REFUSALS", "REFUSED", "AxolotlConfig", "Refusal", "refusal_problems"]
