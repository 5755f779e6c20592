// The error convention of the extern "C" functions the Rust side calls: each returns nullptr on
// success, or an error message that stays valid until the next call on the same thread.
#pragma once

#include <exception>
#include <string>

namespace hone {

inline thread_local std::string last_error;

// Runs f, turning any C++ exception into the message the Rust side reads.
template <typename F>
const char* guarded(F&& f) {
  try {
    f();
    return nullptr;
  } catch (const std::exception& e) {
    last_error = e.what();
  } catch (...) {
    last_error = "unknown C++ exception";
  }
  return last_error.c_str();
}

}  // namespace hone
