"""VPC of a stage: public, private-with-egress and isolated subnets, endpoints and flow logs."""

from __future__ import annotations

from aws_cdk import Acknowledgment, RemovalPolicy, Validations, aws_ec2 as ec2
from constructs import Construct

from config.schema import SUBNET_TIERS, NetworkConfig
from constructs.nag import acknowledge
from constructs.retention import log_group

# Services a task or pod in a private subnet needs before the app even starts (private-egress-for-pulls).
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "EcrApi": ec2.InterfaceVpcEndpointAwsService.ECR,
    "EcrDocker": ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}

TIER_TYPES = {
    "public": ec2.SubnetType.PUBLIC,
    "app": ec2.SubnetType.PRIVATE_WITH_EGRESS,
    "data": ec2.SubnetType.PRIVATE_ISOLATED,
}


class Network(Construct):
    """VPC over the configured zones with NAT, VPC endpoints and flow logs.

    Args:
        config: the stage's network section: CIDR, zones, NAT count, whether interface endpoints are created,
            flow-log retention.
        removal_policy: what happens to the flow-log group on stack removal. Default: DESTROY.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: NetworkConfig,
        removal_policy: RemovalPolicy = RemovalPolicy.DESTROY,
    ) -> None:
        super().__init__(scope, construct_id)
        flow_log_group = log_group(
            self, "FlowLogs", days=config.flow_logs_retention_days, removal_policy=removal_policy
        )
        self.vpc = ec2.Vpc(
            self,
            "Default",
            ip_addresses=ec2.IpAddresses.cidr(config.cidr),
            availability_zones=list(config.availability_zones),
            nat_gateways=config.nat_gateways,
            restrict_default_security_group=True,
            # The tiers and sizes the config schema checks network.cidr against (smallest_vpc_prefix).
            subnet_configuration=[
                ec2.SubnetConfiguration(name=name, subnet_type=TIER_TYPES[name], cidr_mask=mask)
                for name, mask in SUBNET_TIERS
            ],
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_log_group),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        # The zones come from the stage file on purpose: no account lookup at synth (offline, any account).
        Validations.of(self.vpc).acknowledge(
            Acknowledgment(
                id="CloudFormation-Validate::W3010",
                reason="zones are named in the stage file (validated per region) so synth needs no AWS lookup",
            )
        )
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        if config.interface_endpoints:
            for endpoint_id, service in INTERFACE_ENDPOINTS.items():
                endpoint = self.vpc.add_interface_endpoint(
                    endpoint_id,
                    service=service,
                    private_dns_enabled=True,
                    subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
                )
                acknowledge(endpoint, "EC23", "admits HTTPS from the VPC CIDR only (a token nag cannot read)")
