/*
 * h2o_compat.h — the one way every module includes libh2o.
 *
 * Debian's libh2o-evloop is built for its own event loop, but its .pc file does not say
 * so: without H2O_USE_LIBUV=0 the headers assume libuv and every struct size is wrong.
 * CMake defines it for all targets; this guard catches any other build.
 */
#ifndef OE_H2O_COMPAT_H
#define OE_H2O_COMPAT_H

#if !defined(H2O_USE_LIBUV) || H2O_USE_LIBUV != 0
#error "build with -DH2O_USE_LIBUV=0 -DH2O_USE_EPOLL=1 (libh2o-evloop)"
#endif

#include <h2o.h>
#include <h2o/http1.h>
#include <h2o/http2.h>

#endif
