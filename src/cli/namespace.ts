/** The --namespace a Kubernetes verb is given, checked as the API server would check it. */
import { isDns1123Label } from '../api/names.js';
import { ApiaryError } from '../errors.js';

/**
 * A namespace is a DNS-1123 label (RFC 1123): refused here, before it is
 * written into rendered objects or into API paths, rather than by the cluster
 * much later (or, in a path, read as something else).
 */
export function checkNamespace(namespace: string): string {
  if (isDns1123Label(namespace)) return namespace;
  throw new ApiaryError(
    'Usage',
    `--namespace ${JSON.stringify(namespace)} is not a valid namespace name: use at most 63 lowercase letters, digits and "-", starting and ending with a letter or digit (a DNS-1123 label)`,
  );
}
