// The part of hone-envs' MuJoCo binding that needs MuJoCo's headers: struct fields, enum values
// and the virtual file system are reached here, compiled against the headers of the library that
// is linked, so the Rust side never mirrors mjModel or mjData. Rust mirrors only the two view
// structs below, whose sizes and field offsets `hone_mj_view_layout` reports for a test.

#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <mujoco/mujoco.h>

#if mjVERSION_HEADER != 3011000
#error "hone-envs is written against MuJoCo 3.11.0 (scripts/setup.sh installs it)"
#endif
_Static_assert(sizeof(mjtNum) == sizeof(double), "hone-envs needs MuJoCo with double mjtNum");

typedef struct {
  int nq, nv, nu, na, nbody, nsite;
  double timestep;
  const double* qpos0;               // nq
  const double* body_mass;           // nbody
  const double* actuator_ctrlrange;  // nu x 2
} hone_mj_model_view;

typedef struct {
  double* time;
  double* qpos;                   // nq
  double* qvel;                   // nv
  double* ctrl;                   // nu
  const double* xpos;             // nbody x 3
  const double* xipos;            // nbody x 3
  const double* site_xpos;        // nsite x 3
  const double* cinert;           // nbody x 10
  const double* cvel;             // nbody x 6
  const double* qfrc_actuator;    // nv
  const double* qfrc_constraint;  // nv
  const double* cfrc_ext;         // nbody x 6
} hone_mj_data_view;

// Loads an XML model held in memory (the file name is what error messages and relative paths
// refer to). NULL on failure, with the reason in `error`.
mjModel* hone_mj_load_xml(const char* name, const void* xml, int len, char* error,
                          int error_size) {
  mjVFS vfs;
  mj_defaultVFS(&vfs);
  if (mj_addBufferVFS(&vfs, name, xml, len) != 0) {
    mj_deleteVFS(&vfs);
    strncpy(error, "could not add the model to MuJoCo's virtual file system",
            (size_t)error_size - 1);
    error[error_size - 1] = 0;
    return NULL;
  }
  mjModel* model = mj_loadXML(name, &vfs, error, error_size);
  mj_deleteVFS(&vfs);
  return model;
}

// The bytes mj_makeData(m) asks mju_malloc for: the mjData struct, its buffer and its arena,
// computed as mj_makeRawData does (MuJoCo 3.11.0 src/engine/engine_io.c: safeAddToBufferSize
// over MJDATA_POINTERS of mjxmacro.h, each array aligned to 64 bytes; narena from the model), so
// a pool can check that its simulations fit before MuJoCo allocates them (MuJoCo's allocator
// calls mju_error, which exits, when memory runs out). -1 when a size overflows, where
// mj_makeData would warn "Invalid data: ... too large" and return NULL.
int64_t hone_mj_data_bytes(const mjModel* m) {
  uint64_t offset = 0;
  int overflow = 0;
#define X(type, name, nr, nc)                                                          \
  {                                                                                    \
    uint64_t size = 0;                                                                 \
    overflow |= m->nr < 0 || __builtin_mul_overflow((uint64_t)m->nr, (uint64_t)(nc), &size); \
    overflow |= __builtin_mul_overflow(size, (uint64_t)sizeof(type), &size);           \
    overflow |= __builtin_add_overflow(offset, (64 - offset % 64) % 64 + size, &offset); \
  }
  MJDATA_POINTERS
#undef X
  uint64_t total = 0;
  overflow |= m->narena < 0 || __builtin_add_overflow(offset, (uint64_t)m->narena, &total);
  overflow |= __builtin_add_overflow(total, (uint64_t)sizeof(mjData), &total);
  return overflow || total > (uint64_t)INT64_MAX ? -1 : (int64_t)total;
}

// What one mjData holds (the struct, buffer and arena), for the test of hone_mj_data_bytes.
int64_t hone_mj_data_allocated_bytes(const mjData* d) {
  return (int64_t)sizeof(mjData) + d->nbuffer + d->narena;
}

// MuJoCo's messages go to Rust (`sink`), through the one global log handler (mju_setLogHandler,
// MuJoCo 3.11.0 include/mujoco/mujoco.h:998) rather than to the console and MUJOCO_LOG.TXT.
typedef void (*hone_mj_log_sink)(int level, const char* text);
static hone_mj_log_sink hone_sink = NULL;
static mjfLogHandler hone_previous_handler = NULL;

static void hone_log_handler(const mjLogMessage* msg) {
  char text[1100];
  if (msg->func) {
    snprintf(text, sizeof(text), "%s: %s", msg->func, msg->subject);
  } else {
    snprintf(text, sizeof(text), "%s", msg->subject);
  }
  hone_sink(msg->level, text);
  if (msg->level == mjLOG_ERROR) {
    // An error handler must not return ("Errors, warnings, logging" of MuJoCo 3.11.0
    // doc/programming/simulation.rst: MuJoCo's state is undefined after it), and leaving it by
    // longjmp or unwinding would skip Rust frames, so errors end the process as MuJoCo's own
    // handler does: the previous handler (by default: print, MUJOCO_LOG.TXT, exit), then exit.
    // hone checks sizes before MuJoCo allocates so that its errors are not reached.
    if (hone_previous_handler) {
      hone_previous_handler(msg);
    }
    exit(EXIT_FAILURE);
  }
}

// Installs the handler once (the Rust caller guards this with a Once).
void hone_mj_install_log_handler(hone_mj_log_sink sink) {
  hone_sink = sink;
  hone_previous_handler = mju_setLogHandler(hone_log_handler);
}

void hone_mj_model_view_of(const mjModel* m, hone_mj_model_view* out) {
  out->nq = m->nq;
  out->nv = m->nv;
  out->nu = m->nu;
  out->na = m->na;
  out->nbody = m->nbody;
  out->nsite = m->nsite;
  out->timestep = m->opt.timestep;
  out->qpos0 = m->qpos0;
  out->body_mass = m->body_mass;
  out->actuator_ctrlrange = m->actuator_ctrlrange;
}

void hone_mj_data_view_of(mjData* d, hone_mj_data_view* out) {
  out->time = &d->time;
  out->qpos = d->qpos;
  out->qvel = d->qvel;
  out->ctrl = d->ctrl;
  out->xpos = d->xpos;
  out->xipos = d->xipos;
  out->site_xpos = d->site_xpos;
  out->cinert = d->cinert;
  out->cvel = d->cvel;
  out->qfrc_actuator = d->qfrc_actuator;
  out->qfrc_constraint = d->qfrc_constraint;
  out->cfrc_ext = d->cfrc_ext;
}

// -1 when the model has no body of that name.
int hone_mj_body_id(const mjModel* m, const char* name) {
  return mj_name2id(m, mjOBJ_BODY, name);
}

// gymnasium's MujocoEnv._step_mujoco_simulation after the controls are set: `nstep` calls of
// mj_step, then mj_rnePostConstraint for the contact forces (cfrc_ext) it reads.
void hone_mj_step(const mjModel* m, mjData* d, int nstep) {
  for (int i = 0; i < nstep; i++) {
    mj_step(m, d);
  }
  mj_rnePostConstraint(m, d);
}

// Everything mj_step reads from one step to the next (mjSTATE_INTEGRATION: time, qpos, qvel,
// act, warm start, controls, applied forces, ...).
int hone_mj_state_size(const mjModel* m) {
  return mj_stateSize(m, mjSTATE_INTEGRATION);
}

void hone_mj_get_state(const mjModel* m, const mjData* d, double* state) {
  mj_getState(m, d, state, mjSTATE_INTEGRATION);
}

void hone_mj_set_state(const mjModel* m, mjData* d, const double* state) {
  mj_setState(m, d, state, mjSTATE_INTEGRATION);
}

// Sizes and field offsets of the view structs, in declaration order, for the Rust mirrors' test:
// [sizeof model view, its 10 offsets, sizeof data view, its 12 offsets].
int hone_mj_view_layout(size_t* out, int capacity) {
  const size_t layout[] = {
      sizeof(hone_mj_model_view),
      offsetof(hone_mj_model_view, nq),
      offsetof(hone_mj_model_view, nv),
      offsetof(hone_mj_model_view, nu),
      offsetof(hone_mj_model_view, na),
      offsetof(hone_mj_model_view, nbody),
      offsetof(hone_mj_model_view, nsite),
      offsetof(hone_mj_model_view, timestep),
      offsetof(hone_mj_model_view, qpos0),
      offsetof(hone_mj_model_view, body_mass),
      offsetof(hone_mj_model_view, actuator_ctrlrange),
      sizeof(hone_mj_data_view),
      offsetof(hone_mj_data_view, time),
      offsetof(hone_mj_data_view, qpos),
      offsetof(hone_mj_data_view, qvel),
      offsetof(hone_mj_data_view, ctrl),
      offsetof(hone_mj_data_view, xpos),
      offsetof(hone_mj_data_view, xipos),
      offsetof(hone_mj_data_view, site_xpos),
      offsetof(hone_mj_data_view, cinert),
      offsetof(hone_mj_data_view, cvel),
      offsetof(hone_mj_data_view, qfrc_actuator),
      offsetof(hone_mj_data_view, qfrc_constraint),
      offsetof(hone_mj_data_view, cfrc_ext),
  };
  const int count = (int)(sizeof(layout) / sizeof(layout[0]));
  for (int i = 0; i < count && i < capacity; i++) {
    out[i] = layout[i];
  }
  return count;
}
