/* A PKCS#11 module for tests: SoftHSM2 (or $TIUP_TEST_REAL_PKCS11) without RSA-PSS.
 *
 * It forwards every call to the real module except that the RSA-PSS mechanisms are
 * not listed (C_GetMechanismList), have no info (C_GetMechanismInfo) and cannot start
 * a signature (C_SignInit): a token that cannot make TiUP's signatures, for the
 * "mechanism not supported" error. With $TIUP_TEST_KEEP_RAW_PSS set, plain CKM_RSA_PKCS_PSS
 * (over a digest tiup computes) stays: tiup must fall back to it. Built by tests/support/softhsm.py with cc. */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST shim;

static int keep_raw = -1;  /* $TIUP_TEST_KEEP_RAW_PSS=1: only the hashing PSS mechanisms go */

static int blocked(CK_MECHANISM_TYPE m) {
    if (keep_raw < 0) keep_raw = getenv("TIUP_TEST_KEEP_RAW_PSS") != NULL;
    return (m == CKM_RSA_PKCS_PSS && !keep_raw) || m == CKM_SHA1_RSA_PKCS_PSS ||
           m == CKM_SHA256_RSA_PKCS_PSS || m == CKM_SHA384_RSA_PKCS_PSS ||
           m == CKM_SHA512_RSA_PKCS_PSS || m == CKM_SHA224_RSA_PKCS_PSS;
}

static CK_RV mech_list(CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, CK_ULONG_PTR count) {
    CK_ULONG n = 0, k = 0, i;
    CK_RV rv = real->C_GetMechanismList(slot, NULL, &n);
    if (rv != CKR_OK) return rv;
    CK_MECHANISM_TYPE *buf = calloc(n ? n : 1, sizeof *buf);
    if (!buf) return CKR_HOST_MEMORY;
    rv = real->C_GetMechanismList(slot, buf, &n);
    if (rv != CKR_OK) { free(buf); return rv; }
    for (i = 0; i < n; i++) if (!blocked(buf[i])) buf[k++] = buf[i];
    if (list == NULL) { *count = k; free(buf); return CKR_OK; }
    if (*count < k) { *count = k; free(buf); return CKR_BUFFER_TOO_SMALL; }
    memcpy(list, buf, k * sizeof *buf);
    *count = k;
    free(buf);
    return CKR_OK;
}

static CK_RV mech_info(CK_SLOT_ID slot, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR info) {
    if (blocked(type)) return CKR_MECHANISM_INVALID;
    return real->C_GetMechanismInfo(slot, type, info);
}

static CK_RV sign_init(CK_SESSION_HANDLE s, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE key) {
    if (m != NULL && blocked(m->mechanism)) return CKR_MECHANISM_INVALID;
    return real->C_SignInit(s, m, key);
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
    if (real == NULL) {
        const char *path = getenv("TIUP_TEST_REAL_PKCS11");
        void *h = dlopen(path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) return CKR_GENERAL_ERROR;
        CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(h, "C_GetFunctionList");
        if (get == NULL) return CKR_GENERAL_ERROR;
        CK_RV rv = get(&real);
        if (rv != CKR_OK) return rv;
        shim = *real;
        shim.C_GetMechanismList = mech_list;
        shim.C_GetMechanismInfo = mech_info;
        shim.C_SignInit = sign_init;
    }
    *out = &shim;
    return CKR_OK;
}
