/**
 * The sample event data the `test` endpoint sends (Quay's get_sample_data per event), on top of
 * the repository's base event_data.
 */

/** Sample fields of `event`. */
export function sampleEventData(event: string, namespace: string): Record<string, unknown> {
  switch (event) {
    case 'repo_push':
      return { updated_tags: ['latest', 'foo'], pruned_image_count: 3 };
    case 'vulnerability_found':
      return {
        tags: ['latest', 'prod'],
        vulnerability: {
          id: 'CVE-FAKE-CVE', description: 'A futurist vulnerability',
          link: 'https://security-tracker.debian.org/tracker/CVE-FAKE-CVE', priority: 'Critical', has_fix: true,
        },
      };
    case 'repo_mirror_sync_started': case 'repo_mirror_sync_success': case 'repo_mirror_sync_failed':
      return { message: "TEST NOTIFICATION: 'docker.io/library/busybox' with tag pattern 'latest'" };
    case 'repo_image_expiry':
      return { tags: ['latest', 'v1'], expiring_in: '7 days' };
    case 'quota_warning': case 'quota_error':
      return { namespace, threshold_percent: 80, usage_bytes: 858_993_459, limit_bytes: 1_073_741_824, usage_percent: 80 };
    default:
      // Build events: accepted for compatibility, never fired by a build (quayfleet has none).
      return {
        build_id: '296ec063-5f86-4706-a469-f0a400bf9df2', build_name: 'some-fake-build', docker_tags: ['latest', 'foo', 'bar'],
        trigger_id: '1245634', trigger_kind: 'GitHub', trigger_metadata: { default_branch: 'master', ref: 'refs/heads/somebranch', commit: '42d4a62c53350993ea41069e9f2cfdefb0df097d' },
        image_id: '1245657346', manifest_digests: [], is_manual: false,
        ...(event === 'build_failure' ? { error_message: 'This is a fake error message' } : {}),
      };
  }
}
