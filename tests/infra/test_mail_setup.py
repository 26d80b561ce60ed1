"""The sending setup in infra/: a DKIM-signed domain, MAIL FROM, a configuration set whose
bounce and complaint events reach the app, alarms on the rates; provisioned locally from it."""

from __future__ import annotations

import os

import boto3

from infra.provision import load_template, resource_of_type


def resources(kind: str) -> list[dict]:
    template = load_template()
    return [r for r in template["Resources"].values() if r.get("Type") == kind]


def test_the_identity_is_a_domain_with_easy_dkim_and_a_custom_mail_from():
    identity = resource_of_type(load_template(), "AWS::SES::EmailIdentity")
    assert identity["EmailIdentity"] == {"Ref": "MailDomain"}
    assert identity["DkimAttributes"]["SigningEnabled"] is True
    assert identity["DkimSigningAttributes"]["NextSigningKeyLength"] == "RSA_2048_BIT"
    assert "MailFromSubdomain" in str(identity["MailFromAttributes"]["MailFromDomain"])
    parameters = load_template()["Parameters"]
    assert {"MailDomain", "MailFromSubdomain", "SenderEmail"} <= parameters.keys()


def test_bounces_and_complaints_reach_the_mail_events_function():
    template = load_template()
    (destination,) = resources("AWS::SES::ConfigurationSetEventDestination")
    event = destination["Properties"]["EventDestination"]
    assert set(event["MatchingEventTypes"]) == {"bounce", "complaint"}
    topic = event["SnsDestination"]["TopicARN"]["Ref"]
    assert template["Resources"][topic]["Type"] == "AWS::SNS::Topic"
    function = template["Resources"]["MailEvents"]["Properties"]["Events"]
    assert [e["Properties"]["Topic"] for e in function.values()] == [{"Ref": topic}]
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["MAIL_CONFIGURATION_SET"] == {"Ref": "MailConfigurationSet"}


def test_the_app_declares_the_function_the_template_subscribes():
    from app import app

    assert "mail_events" in {f.name for f in app.pure_lambda_functions}


def test_alarms_watch_the_bounce_and_complaint_rates():
    metrics = {r["Properties"]["MetricName"] for r in resources("AWS::CloudWatch::Alarm")}
    assert {"Reputation.BounceRate", "Reputation.ComplaintRate"} <= metrics


def test_local_provisioning_creates_the_configuration_set_and_the_domain(aws):
    sesv2 = boto3.client("sesv2")
    name = os.environ["MAIL_CONFIGURATION_SET"]
    assert sesv2.get_configuration_set(ConfigurationSetName=name)["ConfigurationSetName"] == name
    domain = os.environ["MAIL_SENDER"].rpartition("@")[2]
    assert domain in {i["IdentityName"] for i in sesv2.list_email_identities()["EmailIdentities"]}
