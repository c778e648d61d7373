"""cdk8s charts of the EKS Fargate target. Pure functions of frozen props: nothing here imports aws_cdk."""
