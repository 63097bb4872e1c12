/* tests/common/backend_table.h — every entry of a backend's ops table is filled
 * (kernels/common/backend_ops.h: "every backend fills every entry"). */
#ifndef WN_TESTS_COMMON_BACKEND_TABLE_H
#define WN_TESTS_COMMON_BACKEND_TABLE_H

#include "kernels/common/backend_ops.h"

/* Counts one check per entry (CHECK): a NULL entry fails with its name. Returns the
 * number of NULL entries. */
int check_backend_table(const wn_backend *be);

#endif
