/* SPDX-License-Identifier: Apache-2.0 */
/* Names of the Update Module protocol calls (docs/reference §2.3), shared by every module kind. */
#include "host/module.h"

static const char *const call_names[MOLT_CALL_COUNT] = {
    [MOLT_CALL_PROVIDE_PAYLOAD_FILE_SIZES] = "ProvidePayloadFileSizes",
    [MOLT_CALL_DOWNLOAD] = "Download",
    [MOLT_CALL_DOWNLOAD_WITH_FILE_SIZES] = "DownloadWithFileSizes",
    [MOLT_CALL_ARTIFACT_INSTALL] = "ArtifactInstall",
    [MOLT_CALL_NEEDS_ARTIFACT_REBOOT] = "NeedsArtifactReboot",
    [MOLT_CALL_ARTIFACT_REBOOT] = "ArtifactReboot",
    [MOLT_CALL_ARTIFACT_VERIFY_REBOOT] = "ArtifactVerifyReboot",
    [MOLT_CALL_ARTIFACT_COMMIT] = "ArtifactCommit",
    [MOLT_CALL_SUPPORTS_ROLLBACK] = "SupportsRollback",
    [MOLT_CALL_ARTIFACT_ROLLBACK] = "ArtifactRollback",
    [MOLT_CALL_ARTIFACT_ROLLBACK_REBOOT] = "ArtifactRollbackReboot",
    [MOLT_CALL_ARTIFACT_VERIFY_ROLLBACK_REBOOT] = "ArtifactVerifyRollbackReboot",
    [MOLT_CALL_ARTIFACT_FAILURE] = "ArtifactFailure",
    [MOLT_CALL_CLEANUP] = "Cleanup",
};

const char *molt_call_name(molt_call call)
{
    if ((int)call < 0 || call >= MOLT_CALL_COUNT)
        return NULL;
    return call_names[call];
}
