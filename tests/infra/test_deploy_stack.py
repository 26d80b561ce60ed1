"""The deployable stack, read as an operator's review would: the production stage's
package built for real and offline (bundle and template), the bundle read by
infra/bundle_check.py, the template's SAM expansion, checkov with the committed skip
list, cfn-lint. Figure line: ``deploy: bundle_mb=…, foreign_wheels=…, glibc_max=…,
checkov_failed=…, skips=…, resources=…, alarms=…, roles=…, star_resources=…``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra import bundle_check, stack_checks, wheelhouse
from infra.package import build
from tests.figures import report

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = ROOT / "tests" / "offline"  # loopback-only sitecustomize for chalice and pip
WEB, BACKGROUND = "APIHandler", ("ExportOrders", "DataRights", "MailEvents")
JOBS = ("NightlyInactivity", "DailyAging", "ErasureSweep")
ASYNC = (*BACKGROUND, *JOBS)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The production stage packaged for real (bundle and template), offline from the wheelhouse."""
    if not wheelhouse.ready():
        pytest.fail("build/wheelhouse is missing or older than requirements.txt: make fills it")
    return build(
        tmp_path_factory.mktemp("stack") / "prod",
        "prod",
        wheelhouse=wheelhouse.WHEELHOUSE,
        offline_python_path=OFFLINE,
    )


@pytest.fixture(scope="module")
def packaged(built: Path) -> Path:
    return built / "sam.yaml"


@pytest.fixture(scope="module")
def sam(packaged: Path) -> dict:
    return yaml.safe_load(packaged.read_text())


@pytest.fixture(scope="module")
def expanded(sam: dict) -> dict:
    return stack_checks.expand(sam)


def _resources(expanded: dict, cfn_type: str) -> dict[str, dict]:
    return {k: v for k, v in expanded["Resources"].items() if v["Type"] == cfn_type}


def test_checkov_finds_nothing_beyond_the_committed_skips(built, packaged, expanded):
    bundle = bundle_check.inspect(built / "deployment.zip")
    skips = stack_checks.load_skips()
    failed = stack_checks.run_checkov(packaged)
    unskipped, skipped, stale = stack_checks.apply_skips(failed, skips)
    roles = set(stack_checks.function_roles(expanded).values())
    stars = stack_checks.star_resources(expanded)
    report(
        "deploy",
        require=("bundle_mb", "resources", "alarms", "roles"),
        bundle_mb=bundle["bundle_mb"],
        foreign_wheels=bundle["foreign_wheels"],
        glibc_max=bundle["glibc_max"],
        checkov_failed=len(unskipped),
        skips=len(skips),
        skipped_findings=len(skipped),
        resources=len(expanded["Resources"]),
        alarms=stack_checks.count(expanded, "AWS::CloudWatch::Alarm"),
        roles=len(roles),
        star_resources=len(stars),
    )
    assert bundle_check.problems(bundle) == []
    assert unskipped == [], unskipped
    assert stale == [], f"skips that no longer match a finding: {stale}"
    assert all(len(skip.get("reason", "")) > 40 for skip in skips), "every skip says why"


def test_cfn_lint_passes_on_the_packaged_template(packaged):
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(packaged)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_kind_of_function_has_a_role_of_its_own(expanded):
    roles = stack_checks.function_roles(expanded)
    assert len(roles) == 7, sorted(roles)
    assert roles[WEB] == "WebRole"
    assert {roles[name] for name in BACKGROUND} == {"BackgroundRole"}
    assert {roles[name] for name in JOBS} == {"JobsRole"}


def test_no_iam_statement_allows_star_beyond_the_documented_exceptions(expanded):
    assert stack_checks.star_resources(expanded) == []
    web = json.dumps(expanded["Resources"]["WebRole"])
    assert "identity/${MailDomain}" in web and "configuration-set/${MailConfigurationSet}" in web
    assert "function:${AWS::StackName}-export-orders:live" in web
    # Only the jobs' sweep and the web function start background work; the secret is one ARN.
    assert "lambda:InvokeFunction" not in json.dumps(expanded["Resources"]["BackgroundRole"])
    for role in ("WebRole", "BackgroundRole", "JobsRole"):
        statements = stack_checks._statements(expanded["Resources"][role])
        secret = [s for s in statements if "secretsmanager:GetSecretValue" in s["Action"]]
        assert [s["Resource"] for s in secret] == [{"Ref": "AppSecret"}], role


def test_abuse_and_cost_are_capped(sam, expanded):
    stage = next(iter(_resources(expanded, "AWS::ApiGateway::Stage").values()))["Properties"]
    settings = stage["MethodSettings"][0]
    assert settings["ThrottlingRateLimit"] == {"Ref": "ApiThrottleRate"}
    assert settings["ThrottlingBurstLimit"] == {"Ref": "ApiThrottleBurst"}
    functions = _resources(expanded, "AWS::Lambda::Function")
    for name in ASYNC:
        assert "ReservedConcurrentExecutions" in functions[name]["Properties"], name
    # .chalice/config.json's minimum_compression_size (Chalice has no app-level setting).
    assert sam["Resources"]["RestAPI"]["Properties"]["MinimumCompressionSize"] == 1024
    api = next(iter(_resources(expanded, "AWS::ApiGateway::RestApi").values()))
    assert api["Properties"]["MinimumCompressionSize"] == 1024
    acl = sam["Resources"]["WebAcl"]
    assert acl["Condition"] == "WafEnabled"
    assert sam["Parameters"]["EnableWaf"]["Default"] == "false"
    rule = acl["Properties"]["Rules"][0]["Statement"]["RateBasedStatement"]
    assert rule == {"Limit": {"Ref": "WafRateLimit"}, "AggregateKeyType": "IP"}


def test_failures_are_seen_logged_traced_and_kept(sam, expanded):
    functions = _resources(expanded, "AWS::Lambda::Function")
    groups = {
        json.dumps(g["Properties"]["LogGroupName"]): g["Properties"]
        for g in _resources(expanded, "AWS::Logs::LogGroup").values()
    }
    assert sam["Parameters"]["LogRetentionDays"]["Default"] == 30
    for name, function in functions.items():
        props = function["Properties"]
        assert props["TracingConfig"] == {"Mode": "Active"}, name
        suffix = props["FunctionName"]["Fn::Sub"].removeprefix("${AWS::StackName}")
        group = groups[json.dumps({"Fn::Sub": "/aws/lambda/${AWS::StackName}" + suffix})]
        assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    stage = next(iter(_resources(expanded, "AWS::ApiGateway::Stage").values()))["Properties"]
    assert stage["TracingEnabled"] is True and "AccessLogSetting" in stage
    # Every asynchronous path ends in the failed-events queue, which has an alarm.
    queue = {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]}
    configs = _resources(expanded, "AWS::Lambda::EventInvokeConfig").values()
    on_failure = {
        c["Properties"]["FunctionName"]["Ref"]
        for c in configs
        if c["Properties"]["DestinationConfig"]["OnFailure"]["Destination"] == queue
    }
    assert on_failure == set(ASYNC)
    for rule in _resources(expanded, "AWS::Events::Rule").values():
        assert rule["Properties"]["Targets"][0]["DeadLetterConfig"]["Arn"] == queue
    lambda_subscriptions = [
        s
        for s in _resources(expanded, "AWS::SNS::Subscription").values()
        if s["Properties"]["Protocol"] == "lambda"
    ]
    assert [
        s["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] for s in lambda_subscriptions
    ] == [queue]
    alarms = _resources(expanded, "AWS::CloudWatch::Alarm")
    watched = {
        (a["Properties"]["MetricName"], json.dumps(a["Properties"].get("Dimensions", [])))
        for a in alarms.values()
    }
    metrics = {metric for metric, _ in watched}
    for name in functions:
        dims = json.dumps([{"Name": "FunctionName", "Value": {"Ref": name}}])
        assert ("Errors", dims) in watched and ("Throttles", dims) in watched, name
    assert {
        "5XXError",
        "ReadThrottleEvents",
        "WriteThrottleEvents",
        "Reputation.BounceRate",
        "Reputation.ComplaintRate",
        "ApproximateNumberOfMessagesVisible",
    } <= metrics
    for name, alarm in alarms.items():
        assert {"Ref": "AlarmTopic"} in alarm["Properties"]["AlarmActions"], name
    assert sam["Resources"]["AlarmEmailSubscription"]["Condition"] == "HasAlarmEmail"


def test_the_data_is_protected(sam):
    table = sam["Resources"]["Table"]
    assert table["Properties"]["DeletionProtectionEnabled"] is True
    assert table["DeletionPolicy"] == "Retain"
    policy = sam["Resources"]["FilesBucketPolicy"]["Properties"]["PolicyDocument"]
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny[0]["Action"] == "s3:*" and deny[0]["Principal"] == "*"


def test_a_deploy_shifts_traffic_gradually_and_rolls_back_on_the_alarms(sam, expanded):
    functions = _resources(expanded, "AWS::Lambda::Function")
    aliases = _resources(expanded, "AWS::Lambda::Alias")
    assert {a["Properties"]["FunctionName"]["Ref"] for a in aliases.values()} == set(functions)
    groups = _resources(expanded, "AWS::CodeDeploy::DeploymentGroup")
    assert len(groups) == len(functions)
    for group in groups.values():
        props = group["Properties"]
        assert props["AlarmConfiguration"]["Enabled"] is True
        assert props["AlarmConfiguration"]["Alarms"]
        assert "DEPLOYMENT_STOP_ON_ALARM" in props["AutoRollbackConfiguration"]["Events"]
    # The API calls the alias, so its traffic is the one shifted and rolled back.
    body = json.dumps(sam["Resources"]["RestAPI"]["Properties"]["DefinitionBody"])
    assert "${APIHandler.Arn}/invocations" not in body
    assert "${APIHandlerAliaslive}/invocations" in body


def test_moto_cloudformation_creates_the_expanded_stack(expanded):
    from moto import mock_aws

    with mock_aws():
        import boto3

        made = stack_checks.rehearse_in_moto(expanded)
        functions = boto3.client("lambda").list_functions()["Functions"]
        roles = {f["FunctionName"]: f["Role"].rpartition("/")[2] for f in functions}
        rules = boto3.client("events").list_rules()["Rules"]
    report(
        "deploy_moto",
        require=("created",),
        created=len(made["created"]),
        placeholders=len(made["placeholders"]),
        unsupported_types=len(made["unsupported"]),
    )
    assert made["status"] == "CREATE_COMPLETE"
    assert len(functions) == 7 and len(rules) == 3
    assert len(set(roles.values())) == 3, roles
    created = {s["ResourceType"] for s in made["created"]}
    assert {
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::SQS::Queue",
        "AWS::IAM::Role",
    } <= created
    # README "Deploy" names what moto cannot create; keep it in step.
    readme = (ROOT / "README.md").read_text()
    for cfn_type in (*made["unsupported"], *made["dropped"]):
        assert cfn_type in readme, f"README does not say moto cannot create {cfn_type}"


def test_the_site_answers_at_the_stage_address_or_at_its_own_domain(expanded):
    """Both ways work: URLs carry the stage prefix (chalicelib/urls.py), or SiteDomain maps
    the stage at the root of a custom address, with its certificate and optional DNS record."""
    resources = expanded["Resources"]
    domain = resources["SiteDomainName"]
    mapping = resources["SiteBasePath"]
    record = resources["SiteRecord"]
    assert (domain["Condition"], mapping["Condition"], record["Condition"]) == (
        "HasSiteDomain",
        "HasSiteDomain",
        "HasSiteZone",
    )
    assert domain["Properties"]["SecurityPolicy"] == "TLS_1_2"
    assert domain["Properties"]["RegionalCertificateArn"] == {"Ref": "SiteCertificateArn"}
    assert "BasePath" not in mapping["Properties"]  # the root: no prefix in any URL
    assert mapping["Properties"]["Stage"] == "api"
    assert record["Properties"]["AliasTarget"]["DNSName"] == {
        "Fn::GetAtt": ["SiteDomainName", "RegionalDomainName"]
    }
    site_url = expanded["Outputs"]["SiteUrl"]["Value"]["Fn::If"]
    assert site_url[0] == "HasSiteDomain"
    assert "execute-api" in site_url[2]["Fn::Sub"] and site_url[2]["Fn::Sub"].endswith("/api")
