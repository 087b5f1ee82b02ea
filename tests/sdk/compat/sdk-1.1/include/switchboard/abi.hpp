// What a plugin must share with the host to be loaded: the SDK ABI version and
// the toolchain. Plugins exchange C++ objects (std::string, std::function,
// virtual classes) with the host, so both sides must agree on layout and
// mangling; the host reads these values from the plugin's file and checks
// them before it maps the library.
#pragma once

#include <cstdint>

// The SDK's version. Within a major version a plugin built against SDK
// 1.x loads in every host 1.y with y >= x (docs/plugins.md, "SDK
// versioning"): a minor release only adds, at the end of an interface and
// with a default, and never changes a struct that crosses by value. The
// major changes on any incompatible change. tests/sdk/abi holds each
// minor's ABI, checked with abidiff on every change.
#define SWITCHBOARD_SDK_VERSION_MAJOR 1u
#define SWITCHBOARD_SDK_VERSION_MINOR 1u
#define SWITCHBOARD_SDK_VERSION "1.1.0"

#if defined(__clang__)
#define SWITCHBOARD_COMPILER_ID "clang"
#define SWITCHBOARD_COMPILER_MAJOR __clang_major__
#define SWITCHBOARD_COMPILER_MINOR __clang_minor__
#define SWITCHBOARD_COMPILER_PATCH __clang_patchlevel__
#elif defined(__GNUC__)
#define SWITCHBOARD_COMPILER_ID "gcc"
#define SWITCHBOARD_COMPILER_MAJOR __GNUC__
#define SWITCHBOARD_COMPILER_MINOR __GNUC_MINOR__
#define SWITCHBOARD_COMPILER_PATCH __GNUC_PATCHLEVEL__
#else
#error "Switchboard plugins are built with GCC or Clang"
#endif

#include <string>  // defines _GLIBCXX_USE_CXX11_ABI
#if defined(_GLIBCXX_USE_CXX11_ABI)
#define SWITCHBOARD_CXX11_ABI _GLIBCXX_USE_CXX11_ABI
#else
#define SWITCHBOARD_CXX11_ABI 0
#endif

// Marks the SDK's interfaces and exception types visible even under
// -fvisibility=hidden, so type_info and vtables match across libraries.
#define SWITCHBOARD_API __attribute__((visibility("default")))
