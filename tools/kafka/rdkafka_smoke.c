/*
 * A small check that the installed librdkafka can talk to the broker that
 * kafka.sh runs, using the same features as the project:
 *
 *   1. an idempotent producer (enable.idempotence=true, acks=all) sends N
 *      keyed messages and waits for every delivery report;
 *   2. a consumer in a consumer group reads them all back from the start,
 *      commits its offsets synchronously and closes;
 *   3. a second consumer in the same group finds nothing left to read,
 *      which shows that the committed offsets were stored.
 *
 * Usage: rdkafka_smoke BOOTSTRAP TOPIC [COUNT]
 * Build: cc -o rdkafka_smoke rdkafka_smoke.c $(pkg-config --cflags --libs rdkafka)
 * Exits 0 and prints "ok" when everything worked.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int delivered_ok = 0;
static int delivered_failed = 0;

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "rdkafka_smoke: %s: %s\n", what, detail);
  exit(1);
}

static void set(rd_kafka_conf_t *conf, const char *name, const char *value) {
  char err[512];
  if (rd_kafka_conf_set(conf, name, value, err, sizeof err) != RD_KAFKA_CONF_OK) {
    fail(name, err);
  }
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
  (void)rk;
  (void)opaque;
  if (msg->err) {
    delivered_failed++;
    fprintf(stderr, "rdkafka_smoke: delivery failed: %s\n", rd_kafka_err2str(msg->err));
  } else {
    delivered_ok++;
  }
}

static void produce(const char *bootstrap, const char *topic, int count) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", bootstrap);
  set(conf, "enable.idempotence", "true");
  set(conf, "acks", "all");
  rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) fail("creating the producer", err);

  for (int i = 0; i < count; i++) {
    char key[32], value[64];
    snprintf(key, sizeof key, "key-%d", i);
    snprintf(value, sizeof value, "value-%d", i);
    rd_kafka_resp_err_t e;
    /* Retry while the local queue is full. */
    while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                                  RD_KAFKA_V_VALUE(value, strlen(value)),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END)) ==
           RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      rd_kafka_poll(rk, 100);
    }
    if (e) fail("producing", rd_kafka_err2str(e));
    rd_kafka_poll(rk, 0);
  }
  rd_kafka_resp_err_t e = rd_kafka_flush(rk, 30000);
  if (e) fail("flushing the producer", rd_kafka_err2str(e));
  if (delivered_ok != count || delivered_failed != 0) {
    snprintf(err, sizeof err, "%d delivered, %d failed, %d expected", delivered_ok, delivered_failed,
             count);
    fail("delivery reports", err);
  }
  rd_kafka_destroy(rk);
}

/* Consumes from the group until `expected` messages have arrived, or until
 * `idle_ms` pass without one; commits synchronously and returns the count. */
static int consume(const char *bootstrap, const char *topic, const char *group, int expected,
                   int idle_ms) {
  char err[512];
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", bootstrap);
  set(conf, "group.id", group);
  set(conf, "auto.offset.reset", "earliest");
  set(conf, "enable.auto.commit", "false");
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) fail("creating the consumer", err);
  rd_kafka_poll_set_consumer(rk);

  rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
  rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
  rd_kafka_topic_partition_list_destroy(topics);
  if (e) fail("subscribing", rd_kafka_err2str(e));

  int got = 0;
  time_t last = time(NULL);
  while (got < expected && (time(NULL) - last) * 1000 < idle_ms) {
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 200);
    if (!msg) continue;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      /* Not enabled, but harmless. */
    } else if (msg->err) {
      fail("consuming", rd_kafka_message_errstr(msg));
    } else {
      got++;
      last = time(NULL);
    }
    rd_kafka_message_destroy(msg);
  }
  if (got > 0) {
    e = rd_kafka_commit(rk, NULL, 0);
    if (e) fail("committing offsets", rd_kafka_err2str(e));
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  return got;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s BOOTSTRAP TOPIC [COUNT]\n", argv[0]);
    return 2;
  }
  const char *bootstrap = argv[1];
  const char *topic = argv[2];
  int count = argc > 3 ? atoi(argv[3]) : 1000;
  char group[64];
  snprintf(group, sizeof group, "rdkafka-smoke-%ld", (long)time(NULL));

  printf("librdkafka %s\n", rd_kafka_version_str());
  produce(bootstrap, topic, count);
  printf("produced %d messages (idempotent, acks=all)\n", count);

  int got = consume(bootstrap, topic, group, count, 20000);
  printf("consumed %d messages in group %s\n", got, group);
  if (got != count) fail("first consumer", "did not read every message");

  int again = consume(bootstrap, topic, group, 1, 3000);
  printf("a second consumer in the group read %d messages\n", again);
  if (again != 0) fail("second consumer", "committed offsets were not honoured");

  printf("ok\n");
  return 0;
}
