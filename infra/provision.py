"""Create the table, bucket, SES identity and configuration set described in infra/resources.yaml.

The local run and the tests call this against moto, so the template stays the
only definition of key schema, GSIs, TTL, lifecycle and sender identity.
(moto's CloudFormation ignores TTL and SES identities, hence this reader.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import yaml

TEMPLATE = Path(__file__).with_name("resources.yaml")


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {f"Fn::{suffix}" if suffix not in ("Ref",) else "Ref": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def resource_of_type(template: dict[str, Any], cfn_type: str) -> dict[str, Any]:
    found = [r for r in template.get("Resources", {}).values() if r.get("Type") == cfn_type]
    if len(found) != 1:
        raise LookupError(f"infra template must define exactly one {cfn_type}, found {len(found)}")
    return found[0]["Properties"]


def table_definition(template: dict[str, Any]) -> dict[str, Any]:
    """The create_table arguments (minus the name) the template describes."""
    props = resource_of_type(template, "AWS::DynamoDB::Table")
    args: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return args


def provision(
    session: boto3.session.Session,
    *,
    table_name: str,
    bucket_name: str,
    sender: str,
    configuration_set: str | None = None,
    signing_secret: str | None = None,
    template_path: Path = TEMPLATE,
) -> None:
    template = load_template(template_path)
    if signing_secret:
        create_signing_secret(session, signing_secret, template)

    dynamodb = session.client("dynamodb")
    dynamodb.create_table(TableName=table_name, **table_definition(template))
    table_props = resource_of_type(template, "AWS::DynamoDB::Table")
    ttl = table_props.get("TimeToLiveSpecification")
    if ttl:
        dynamodb.update_time_to_live(TableName=table_name, TimeToLiveSpecification=ttl)
    protect_table(dynamodb, table_name, table_props)

    bucket_props = resource_of_type(template, "AWS::S3::Bucket")
    s3 = session.client("s3")
    s3.create_bucket(Bucket=bucket_name)
    block = bucket_props.get("PublicAccessBlockConfiguration")
    if block:
        s3.put_public_access_block(Bucket=bucket_name, PublicAccessBlockConfiguration=block)
    rules = bucket_props.get("LifecycleConfiguration", {}).get("Rules", [])
    if rules:
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket_name,
            LifecycleConfiguration={"Rules": [_lifecycle_rule(rule) for rule in rules]},
        )

    # The template names the identity through the MailDomain parameter: the local
    # run verifies the sender's domain and address (moto has no DNS, no DKIM).
    resource_of_type(template, "AWS::SES::EmailIdentity")
    session.client("ses").verify_email_identity(EmailAddress=sender)
    sesv2 = session.client("sesv2")
    sesv2.create_email_identity(EmailIdentity=sender.rpartition("@")[2])
    if configuration_set:
        resource_of_type(template, "AWS::SES::ConfigurationSet")
        sesv2.create_configuration_set(ConfigurationSetName=configuration_set)
    # What the local run cannot create (moto 5.2): the configuration set's event
    # destination, MAIL FROM and DKIM verification, the SNS subscription of the
    # MailEvents function, the CloudWatch alarms. Local bounces and complaints are
    # fed to the function directly (services.delivery.handle_sns_event).


def protect_table(dynamodb: Any, table_name: str, table_props: dict[str, Any]) -> None:
    """Point-in-time recovery and deletion protection, as the template sets them."""
    pitr = table_props.get("PointInTimeRecoverySpecification")
    if pitr:
        dynamodb.update_continuous_backups(
            TableName=table_name, PointInTimeRecoverySpecification=pitr
        )
    if table_props.get("DeletionProtectionEnabled"):
        dynamodb.update_table(TableName=table_name, DeletionProtectionEnabled=True)


def create_signing_secret(
    session: boto3.session.Session, name: str, template: dict[str, Any] | None = None
) -> str:
    """The signing key ring as the template's AppSecret generates it; its ARN."""
    import json
    import secrets

    props = resource_of_type(template or load_template(), "AWS::SecretsManager::Secret")
    generate = props["GenerateSecretString"]
    ring = json.loads(generate.get("SecretStringTemplate", "{}"))
    ring[generate["GenerateStringKey"]] = secrets.token_hex(generate["PasswordLength"] // 2)
    answer = session.client("secretsmanager").create_secret(
        Name=name, Description=props.get("Description", ""), SecretString=json.dumps(ring)
    )
    return str(answer["ARN"])


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """Translate a CloudFormation lifecycle rule into the S3 API's shape."""
    out: dict[str, Any] = {"ID": rule["Id"], "Status": rule["Status"]}
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": rule["ExpirationInDays"]}
    if "AbortIncompleteMultipartUpload" in rule:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
        }
    return out
