# Sourced by every script that runs the conformance suite: the server settings, which the
# suite reads from the same environment. Usage: . scripts/conformance-env.sh <secret-prefix> <transports>
export JWT_SECRET="$1-$RANDOM-$RANDOM"
export CHAT_NAMESPACE="${CHAT_NAMESPACE:-/}"
export CHAT_TRANSPORTS="$2"
export MAX_SOCKETS_PER_USER=5
export RATE_LIMIT_MESSAGES=10
export RATE_LIMIT_WINDOW_MS=1500
export TYPING_TIMEOUT_MS=600
export PRESENCE_THROTTLE_MS=400
export MAX_PAYLOAD_BYTES=65536
# Beyond the contract (our hosts' defaults, stated so that the suite tests the event pace;
# a server without one leaves them unset and the suite skips that test).
export EVENT_BURST=300
export EVENT_RATE_PER_SEC=100
