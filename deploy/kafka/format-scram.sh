#!/usr/bin/env bash
# The command of each Kafka node in deploy/compose.yaml (docs/security.md, Kafka): SASL/SCRAM-SHA-512 for
# clients and between brokers, the controllers on PLAIN, all as the `admin` super user.
# KRaft keeps SCRAM credentials in the metadata log, so the principals' first credentials must be added
# when the storage is formatted: do that once here, before the image's own start (its format step then
# finds the storage formatted and leaves it). Later password changes: docs/security.md, Kafka.
set -euo pipefail

for role in ADMIN GATEWAY WORKER API; do
  var="LIVEMETRICS_KAFKA_${role}_PASSWORD"
  if [[ -z "${!var:-}" ]]; then echo "$var is not set (livemetrics secrets init writes it)" >&2; exit 1; fi
done

# What `kafka-storage format` reads: this node's identity and where its data lives.
props=/tmp/livemetrics-format.properties
cat > "$props" <<PROPS
process.roles=${KAFKA_PROCESS_ROLES}
node.id=${KAFKA_NODE_ID}
controller.quorum.voters=${KAFKA_CONTROLLER_QUORUM_VOTERS}
controller.listener.names=${KAFKA_CONTROLLER_LISTENER_NAMES}
listeners=${KAFKA_LISTENERS}
listener.security.protocol.map=${KAFKA_LISTENER_SECURITY_PROTOCOL_MAP}
inter.broker.listener.name=${KAFKA_INTER_BROKER_LISTENER_NAME}
log.dirs=${KAFKA_LOG_DIRS}
PROPS
scram=()
for role in admin gateway worker api; do
  var="LIVEMETRICS_KAFKA_${role^^}_PASSWORD"
  scram+=(--add-scram "SCRAM-SHA-512=[name=${role},password=${!var}]")
done
/opt/kafka/bin/kafka-storage.sh format --ignore-formatted --cluster-id "${CLUSTER_ID}" -c "$props" "${scram[@]}"
rm -f "$props"

# The image requires a JAAS file with SASL listeners (KAFKA_OPTS names it); the healthcheck logs in with
# the admin client config.
umask 077
cat > /tmp/livemetrics-jaas.conf <<JAAS
KafkaServer { org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${LIVEMETRICS_KAFKA_ADMIN_PASSWORD}"; };
JAAS
cat > /tmp/livemetrics-admin.properties <<CLIENT
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${LIVEMETRICS_KAFKA_ADMIN_PASSWORD}";
CLIENT
exec /etc/kafka/docker/run
