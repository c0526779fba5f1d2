/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sbxfs/remote/cmdpoll.h"
#include "sbxfs/remote/time.h"

void cmdpoll_init(struct cmdpoll *g)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->done, NULL);
	g->running = 0;
	g->stopping = 0;
}

void cmdpoll_destroy(struct cmdpoll *g)
{
	pthread_cond_destroy(&g->done);
	pthread_mutex_destroy(&g->lock);
}

int cmdpoll_start(struct cmdpoll *g, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_mutex_lock(&g->lock);
	g->running++;
	pthread_mutex_unlock(&g->lock);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (rc) {
		cmdpoll_leave(g);
		sbx_failf("cannot start a thread: %s", strerror(rc));
		return -rc;
	}
	return 0;
}

void cmdpoll_leave(struct cmdpoll *g)
{
	pthread_mutex_lock(&g->lock);
	if (--g->running == 0)
		pthread_cond_broadcast(&g->done);
	pthread_mutex_unlock(&g->lock);
}

int cmdpoll_stopping(struct cmdpoll *g)
{
	int s;

	pthread_mutex_lock(&g->lock);
	s = g->stopping;
	pthread_mutex_unlock(&g->lock);
	return s;
}

void cmdpoll_stop(struct cmdpoll *g)
{
	pthread_mutex_lock(&g->lock);
	g->stopping = 1;
	pthread_mutex_unlock(&g->lock);
}

int cmdpoll_wait(struct cmdpoll *g, int timeout_s)
{
	struct timespec until;
	int left;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_s;
	pthread_mutex_lock(&g->lock);
	while (g->running)
		if (pthread_cond_timedwait(&g->done, &g->lock, &until))
			break;
	left = g->running;
	pthread_mutex_unlock(&g->lock);
	return left;
}

void cmdpoll_exit(struct sbx_exit *ex, long code, int signalled)
{
	if (signalled && code == 128 + signalled) {
		ex->how = SBX_EXIT_SIGNAL;
		ex->code = signalled;
	} else {
		ex->how = SBX_EXIT_CODE;
		ex->code = (int)code;
	}
}

void cmdpoll_lost(struct sbx_exit *ex)
{
	ex->how = SBX_EXIT_FAILED;
	snprintf(ex->reason, sizeof(ex->reason), "lost: %.140s", sbx_fail_text());
}

void cmdpoll_unmounted(struct sbx_exit *ex)
{
	ex->how = SBX_EXIT_FAILED;
	snprintf(ex->reason, sizeof(ex->reason),
		 "sbxfs was unmounted; the command may still run");
}

long cmdpoll_backoff(long delay_ms, int progressed)
{
	if (progressed)
		return 0;
	if (delay_ms < 20)
		return 20;
	return delay_ms * 3 / 2 > 500 ? 500 : delay_ms * 3 / 2;
}

void cmdpoll_follow(struct cmdpoll *g, struct sbx_exit *ex, const struct cmdpoll_cmd *ops,
		    void *cmd, const int *signalled)
{
	struct timespec last_ok;
	long delay_ms = 20;
	int code = 0;

	*ex = (struct sbx_exit){ .how = SBX_EXIT_FAILED };
	clock_gettime(CLOCK_MONOTONIC, &last_ok);
	for (;;) {
		int progressed = 0, rc;

		if (cmdpoll_stopping(g)) {
			cmdpoll_unmounted(ex);
			return;
		}
		rc = ops->poll(cmd, &code, &progressed);
		if (rc == 1) {
			cmdpoll_exit(ex, code, *signalled);
			return;
		}
		if (rc < 0) {
			if (ops->failed && ops->failed(cmd, rc, ex))
				return;
			if (rc == -ENOENT ||
			    ms_since(&last_ok) > CMDPOLL_LOST_S * 1000L) {
				cmdpoll_lost(ex);
				return;
			}
		} else {
			clock_gettime(CLOCK_MONOTONIC, &last_ok);
		}
		delay_ms = cmdpoll_backoff(delay_ms, progressed);
		if (delay_ms)
			usleep((useconds_t)delay_ms * 1000);
	}
}
