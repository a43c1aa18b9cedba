/* The walk of traceability.ledger.canonical's value check, compiled.
 *
 * Copyright (C) the traceability authors. SPDX-License-Identifier: GPL-3.0-or-later
 *
 * plain(value) says whether every value inside ``value`` has a canonical form, by the rules of
 * canonical._check: dicts (exactly dict) whose keys are ASCII strings (exactly str), lists (exactly list),
 * strings (exactly str), integers (exactly int) in the signed 64-bit range, booleans and None. It answers
 * False for anything else, and for nesting deeper than MAX_DEPTH, which it leaves to the Python walk:
 * canonical.encode walks a value this refuses again in Python, which raises the error naming the first
 * value without a canonical form (or, for a deep one that holds, passes it). So it never decides alone
 * that a value is refused, only that one holds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define MAX_DEPTH 64

static int plain_value(PyObject *value, int depth);

static int
plain_int(PyObject *value)
{
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (n == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return overflow == 0;
}

static int
plain_dict(PyObject *dict, int depth)
{
    PyObject *key, *child;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &child)) {
        if (!PyUnicode_CheckExact(key)) {
            return 0;
        }
#if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(key) < 0) {
            PyErr_Clear();
            return 0;
        }
#endif
        if (!PyUnicode_IS_ASCII(key) || !plain_value(child, depth)) {
            return 0;
        }
    }
    return 1;
}

static int
plain_list(PyObject *list, int depth)
{
    /* The items are read one at a time by index: nothing here runs Python code, so the list cannot change. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        if (!plain_value(PyList_GET_ITEM(list, i), depth)) {
            return 0;
        }
    }
    return 1;
}

static int
plain_value(PyObject *value, int depth)
{
    if (PyUnicode_CheckExact(value) || value == Py_None || value == Py_True || value == Py_False) {
        return 1;
    }
    if (PyLong_CheckExact(value)) {
        return plain_int(value);
    }
    if (depth >= MAX_DEPTH) {
        return 0;
    }
    if (PyDict_CheckExact(value)) {
        return plain_dict(value, depth + 1);
    }
    if (PyList_CheckExact(value)) {
        return plain_list(value, depth + 1);
    }
    return 0;
}

static PyObject *
plain(PyObject *self, PyObject *value)
{
    if (!PyDict_CheckExact(value)) {
        Py_RETURN_FALSE;
    }
    return PyBool_FromLong(plain_dict(value, 1));
}

static PyMethodDef methods[] = {
    {"plain", plain, METH_O,
     "plain(value) -> bool: whether value is a dict holding only values with a canonical form (False leaves the "
     "verdict to the Python walk)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "traceability._canonical", "The walk of canonical._check, compiled.", -1, methods,
};

PyMODINIT_FUNC
PyInit__canonical(void)
{
    return PyModule_Create(&module);
}
