# The handler, as in AWS's tutorial: the event is $1, the response goes to stdout.
handler () {
  EVENT_DATA=$1
  echo "handler got $EVENT_DATA" >&2
  case "$EVENT_DATA" in
    *'"fail"'*) echo "the event asked to fail" >&2; return 1 ;;
  esac
  echo "{\"echo\": $EVENT_DATA, \"runtime\": \"bash\"}"
}

# The benchmarks' hello.
hello () {
  echo '{"message": "Hello"}'
}
