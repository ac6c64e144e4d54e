/**
 * `dockerfilebuild`: Quay's build queue. quayfleet has no build worker; the name is reserved so
 * no other queue takes it and the `quay_queue_*` gauges keep reporting it (as zeros), which
 * Quay dashboards expect (seed QUEUE-1).
 */

/** The reserved name of Quay's build queue. */
export const DOCKERFILE_BUILD_QUEUE_NAME = 'dockerfilebuild';
