"""``%ei_deploy`` and ``%ei_endpoints`` in a real kernel, on a real endpoint server process; and
the dashboard's Endpoint tab drawing that endpoint during a load test."""

from __future__ import annotations

import json
import re

import pytest

from tests.kernel import kernel, run
from tests.notebook.test_dashboard_kernel import MAKE_MODEL

pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def test_deploy_list_invoke_and_delete_from_magics() -> None:
    with kernel() as (_, client):
        assert run(client, "%load_ext ei_widgets").error is None
        empty = run(client, "%ei_endpoints")
        assert empty.error is None
        assert "No live endpoint" in "".join(d.get("text/plain", "") for d in empty.data)

        no_model = run(client, "%ei_deploy --instance ml.m5.large")
        assert "UsageError" in no_model.stderr and "needs the model's variable" in no_model.stderr
        assert run(client, MAKE_MODEL).error is None
        bad = run(client, "%ei_deploy model --accelerator ml.eia9.huge")
        assert "UsageError" in bad.stderr and "ml.eia2.medium" in bad.stderr

        deployed = run(
            client,
            "p = %ei_deploy model --instance ml.m5.large --accelerator ml.eia2.medium"
            " --count 2 --name magic-test",
            timeout=120,
        )
        assert deployed.error is None, deployed.error
        assert "Deployed magic-test: 2 x ml.m5.large + ml.eia2.medium" in deployed.stdout
        url = re.search(r"POST (http://127\.0\.0\.1:\d+)/invocations", deployed.stdout)
        assert url is not None
        invoked = run(
            client,
            "import numpy as np\nprint(p.url, p.predict(np.ones((1, 64), np.float32)).shape)",
        )
        assert invoked.error is None, invoked.error
        assert invoked.stdout.split() == [url.group(1), "(1,", "64)"]

        listed = run(client, "%ei_endpoints")
        assert listed.error is None
        text = "".join(d.get("text/plain", "") for d in listed.data)
        html = "".join(d.get("text/html", "") for d in listed.data)
        assert "magic-test" in text and "InService" in text and "2 x ml.m5.large" in text
        assert re.search(r"\$0\.\d+", text)  # the cost so far, in dollars
        assert "magic-test" in html and "cost so far" in html

        missing = run(client, "%ei_endpoints --delete nope")
        assert "no live endpoint 'nope'" in missing.stderr and "magic-test" in missing.stderr
        deleted = run(client, "%ei_endpoints --delete magic-test")
        assert deleted.error is None and "Deleted magic-test" in deleted.stdout
        after = run(client, "print(p.status, len(__import__('ei_widgets').endpoints()))")
        assert after.stdout.split() == ["Deleted", "0"]


WATCH = """
import json, time
import numpy as np
board = ei_widgets.dashboard()
board.tabs.selected_index = len(board.tab_list) - 1  # the Endpoint tab, as a person opens it
tab = board.tab_list[-1]
p.load_test(rps=30, duration=3, progress=False)
time.sleep(1.5)  # the poller's next pass after the last second
print(json.dumps({"polls": tab.polls, "name": tab.choice.value,
                  "drawn": float(np.nansum(tab.throughput.y)), "p90": float(np.nanmax(tab.p90.y)),
                  "summary": tab.summary.value}))
board.close()
"""


def test_the_endpoint_tab_follows_a_load_test_in_a_kernel() -> None:
    with kernel() as (_, client):
        assert run(client, "import ei_widgets").error is None
        assert run(client, MAKE_MODEL).error is None
        made = run(
            client,
            "p = ei_widgets.deploy(model, accelerator_type='ml.eia2.medium', endpoint_name='tab')",
            timeout=120,
        )
        assert made.error is None, made.error
        watched = run(client, WATCH, timeout=120)
        assert watched.error is None, watched.error
        seen = json.loads(watched.stdout.strip().splitlines()[-1])
        assert seen["name"] == "tab" and seen["polls"] >= 3
        assert seen["drawn"] >= 60  # most of the 90 requests are drawn, second by second
        assert seen["p90"] > 0 and "cost so far" in seen["summary"]
        assert run(client, "p.delete_endpoint()").error is None
