// A C interface to ale::ALEInterface (ALE 0.12.1, src/ale/ale_interface.hpp) for hone-envs'
// `atari` feature. No C++ exception crosses it: each fallible function returns 0 on success and
// -1 on failure, with a message in the caller's `error` buffer. ALE ends the process (std::exit)
// on a missing or unknown ROM (ale_interface.cpp:81-145) and on an invalid action
// (ale_state.cpp:383), so those are checked here first.

#include <ale/ale_interface.hpp>
#include <ale/emucore/MD5.hxx>
#include <ale/games/Roms.hpp>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace {

struct HoneAle {
  ale::ALEInterface ale;
  bool loaded = false;
  // The last serialized state, read by the caller until the next clone.
  std::string state;
};

void write_error(char* error, size_t error_size, const char* message) {
  if (error != nullptr && error_size > 0) {
    std::snprintf(error, error_size, "%s", message);
  }
}

// Runs `body`; an exception becomes -1 and its message.
template <typename F>
int guarded(char* error, size_t error_size, F&& body) {
  try {
    return body();
  } catch (const std::exception& e) {
    write_error(error, error_size, e.what());
  } catch (const char* message) {  // ALE's (de)serializer throws string literals
    write_error(error, error_size, message);
  } catch (...) {
    write_error(error, error_size, "unknown C++ exception in ALE");
  }
  return -1;
}

int fail(char* error, size_t error_size, const std::string& message) {
  write_error(error, error_size, message.c_str());
  return -1;
}

// A little-endian int as ALE's Serializer writes it (emucore/Serializer.cxx:46).
int32_t le_int(const uint8_t* p) {
  return static_cast<int32_t>(static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                              static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24);
}

int check_loaded(const HoneAle* h, char* error, size_t error_size) {
  return h->loaded ? 0 : fail(error, error_size, "no ROM loaded");
}

}  // namespace

extern "C" {

// ALE's banner and notices go to stderr at Info level (ale_interface.cpp:100); only errors
// should reach it, set once before the first ALEInterface exists.
void* hone_ale_new(char* error, size_t error_size) {
  static std::once_flag quiet;
  HoneAle* out = nullptr;
  guarded(error, error_size, [&] {
    std::call_once(quiet, [] { ale::Logger::setMode(ale::Logger::Error); });
    out = new HoneAle();
    return 0;
  });
  return out;
}

void hone_ale_delete(void* handle) { delete static_cast<HoneAle*>(handle); }

int hone_ale_set_int(void* handle, const char* key, int value, char* error, size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    h->ale.setInt(key, value);
    return 0;
  });
}

int hone_ale_set_bool(void* handle, const char* key, int value, char* error, size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    h->ale.setBool(key, value != 0);
    return 0;
  });
}

int hone_ale_set_float(void* handle, const char* key, float value, char* error,
                       size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    h->ale.setFloat(key, value);
    return 0;
  });
}

// Loads a ROM that ALE supports; anything loadROM would exit on is an error instead.
int hone_ale_load_rom(void* handle, const char* path, char* error, size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    const fs::path rom(path);
    std::error_code ec;
    if (!fs::is_regular_file(rom, ec)) {
      return fail(error, error_size, "ROM file " + rom.string() + " not found");
    }
    // Atari 2600 cartridges are at most a few tens of KiB; do not read a large file whole.
    const auto size = fs::file_size(rom, ec);
    if (!ec && size > (1u << 20)) {
      return fail(error, error_size, rom.string() + " is too large to be an Atari 2600 ROM");
    }
    std::ifstream file(rom, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(file)),
                               std::istreambuf_iterator<char>());
    if (!file.good() && !file.eof()) {
      return fail(error, error_size, "could not read ROM file " + rom.string());
    }
    if (bytes.empty()) {
      return fail(error, error_size, "ROM file " + rom.string() + " is empty");
    }
    // The check of ALEInterface::isSupportedROM (ale_interface.cpp:168), without its leak.
    const std::string md5 = ale::stella::MD5(bytes.data(), static_cast<uint32_t>(bytes.size()));
    std::unique_ptr<ale::RomSettings> wrapper(ale::buildRomRLWrapper(rom, md5));
    if (!wrapper || wrapper->md5() != md5) {
      return fail(error, error_size,
                  rom.string() + " (MD5 " + md5 + ") is not one of the ROMs ALE 0.12.1 supports");
    }
    h->ale.loadROM(rom);
    h->loaded = true;
    return 0;
  });
}

int hone_ale_reset(void* handle, char* error, size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    if (check_loaded(h, error, error_size) != 0) return -1;
    h->ale.reset_game();
    return 0;
  });
}

// One emulator step (frame_skip frames) with `action`, an index into ALE's 18 joystick actions
// (PLAYER_A_NOOP..PLAYER_A_DOWNLEFTFIRE, common/Constants.h).
int hone_ale_act(void* handle, int action, float paddle_strength, int* reward, char* error,
                 size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    if (check_loaded(h, error, error_size) != 0) return -1;
    if (action < 0 || action >= PLAYER_A_MAX) {
      return fail(error, error_size,
                  "action " + std::to_string(action) + " is outside ALE's actions 0..18");
    }
    if (!std::isfinite(paddle_strength)) {
      return fail(error, error_size, "paddle strength is not finite");
    }
    *reward = h->ale.act(static_cast<ale::Action>(action), paddle_strength);
    return 0;
  });
}

// The queries below are for a handle with a loaded ROM (the Rust side has one from construction).
int hone_ale_game_over(const void* handle, int with_truncation) {
  return static_cast<const HoneAle*>(handle)->ale.game_over(with_truncation != 0) ? 1 : 0;
}

int hone_ale_game_truncated(const void* handle) {
  return static_cast<const HoneAle*>(handle)->ale.game_truncated() ? 1 : 0;
}

int hone_ale_lives(void* handle) { return static_cast<HoneAle*>(handle)->ale.lives(); }

int hone_ale_frame_number(const void* handle) {
  return static_cast<const HoneAle*>(handle)->ale.getFrameNumber();
}

int hone_ale_episode_frame_number(const void* handle) {
  return static_cast<const HoneAle*>(handle)->ale.getEpisodeFrameNumber();
}

// Writes up to `capacity` actions of the minimal (or else the legal) set; returns their number.
int hone_ale_action_set(const void* handle, int minimal, int* out, int capacity, char* error,
                        size_t error_size) {
  auto* h = static_cast<const HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    const ale::ActionVect actions =
        minimal != 0 ? h->ale.getMinimalActionSet() : h->ale.getLegalActionSet();
    const int n = static_cast<int>(actions.size());
    for (int i = 0; i < n && i < capacity; ++i) out[i] = static_cast<int>(actions[i]);
    return n;
  });
}

void hone_ale_screen_size(const void* handle, int* height, int* width) {
  const ale::ALEScreen& screen = static_cast<const HoneAle*>(handle)->ale.getScreen();
  *height = static_cast<int>(screen.height());
  *width = static_cast<int>(screen.width());
}

// Grayscale (height*width bytes) or RGB (height*width*3, row-major HWC) through ALE's palette,
// as getScreenGrayscale/getScreenRGB do (ale_interface.cpp:337-360), into the caller's buffer.
int hone_ale_screen(void* handle, int rgb, uint8_t* out, size_t len, char* error,
                    size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    if (check_loaded(h, error, error_size) != 0) return -1;
    const ale::ALEScreen& screen = h->ale.getScreen();
    const size_t pixels = screen.height() * screen.width();
    if (len != (rgb != 0 ? 3 * pixels : pixels)) {
      return fail(error, error_size, "screen buffer has the wrong size");
    }
    ale::ColourPalette& palette = h->ale.theOSystem->colourPalette();
    if (rgb != 0) {
      palette.applyPaletteRGB(out, screen.getArray(), pixels);
    } else {
      palette.applyPaletteGrayscale(out, screen.getArray(), pixels);
    }
    return 0;
  });
}

// Serializes the state (with the environment's RNG when asked); *data stays valid until the
// next clone or the handle's deletion.
int hone_ale_clone_state(void* handle, int include_rng, const uint8_t** data, size_t* len,
                         char* error, size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    if (check_loaded(h, error, error_size) != 0) return -1;
    h->state = h->ale.cloneState(include_rng != 0).serialize();
    *data = reinterpret_cast<const uint8_t*>(h->state.data());
    *len = h->state.size();
    return 0;
  });
}

int hone_ale_restore_state(void* handle, const uint8_t* data, size_t len, char* error,
                           size_t error_size) {
  auto* h = static_cast<HoneAle*>(handle);
  return guarded(error, error_size, [&] {
    if (check_loaded(h, error, error_size) != 0) return -1;
    // The framing of ALEState::serialize (environment/ale_state.cpp:116): six ints, the
    // emulator's state as a length-prefixed string starting with the cartridge's MD5 (as
    // System::saveState writes it), two ints. Checked first: ALE's Deserializer trusts lengths,
    // and a state of another game would be half loaded (System::loadState's result is ignored).
    const std::string md5 = h->ale.theOSystem->console().properties().get(ale::stella::Cartridge_MD5);
    const size_t inner = len >= 28 ? static_cast<uint32_t>(le_int(data + 24)) : 0;
    if (len < 36 || inner != len - 36 || inner < 4 + md5.size() ||
        le_int(data + 28) != static_cast<int32_t>(md5.size()) ||
        std::memcmp(data + 32, md5.data(), md5.size()) != 0) {
      return fail(error, error_size, "not an ALE state of this game (" + md5 + ")");
    }
    const ale::ALEState state(std::string(reinterpret_cast<const char*>(data), len));
    h->ale.restoreState(state);
    return 0;
  });
}

}  // extern "C"
