//! The C functions hone calls: MuJoCo's own (signatures of mujoco.h, MuJoCo 3.11.0) and the shim's
//! (`shim.c`), which reads struct fields, enum values and the virtual file system so that Rust
//! never mirrors mjModel or mjData. The only mirrored structs are the shim's two views; their
//! layout is checked against the C compiler's in the tests below.

use std::ffi::{c_char, c_int, c_void};

/// MuJoCo's `mjModel`, only ever behind a pointer.
#[repr(C)]
pub(crate) struct MjModel {
    _opaque: [u8; 0],
}

/// MuJoCo's `mjData`, only ever behind a pointer.
#[repr(C)]
pub(crate) struct MjData {
    _opaque: [u8; 0],
}

/// `hone_mj_model_view` of shim.c: sizes and the model arrays hone reads.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct ModelView {
    pub nq: c_int,
    pub nv: c_int,
    pub nu: c_int,
    pub na: c_int,
    pub nbody: c_int,
    pub nsite: c_int,
    pub timestep: f64,
    pub qpos0: *const f64,
    pub body_mass: *const f64,
    pub actuator_ctrlrange: *const f64,
}

/// `hone_mj_data_view` of shim.c: pointers into one mjData's arrays, fixed for its lifetime.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct DataView {
    pub time: *mut f64,
    pub qpos: *mut f64,
    pub qvel: *mut f64,
    pub ctrl: *mut f64,
    pub xpos: *const f64,
    pub xipos: *const f64,
    pub site_xpos: *const f64,
    pub cinert: *const f64,
    pub cvel: *const f64,
    pub qfrc_actuator: *const f64,
    pub qfrc_constraint: *const f64,
    pub cfrc_ext: *const f64,
}

unsafe extern "C" {
    pub(crate) fn mj_version() -> c_int;
    pub(crate) fn mj_deleteModel(m: *mut MjModel);
    pub(crate) fn mj_makeData(m: *const MjModel) -> *mut MjData;
    pub(crate) fn mj_deleteData(d: *mut MjData);
    pub(crate) fn mj_resetData(m: *const MjModel, d: *mut MjData);
    pub(crate) fn mj_forward(m: *const MjModel, d: *mut MjData);
    pub(crate) fn mj_step(m: *const MjModel, d: *mut MjData);

    pub(crate) fn hone_mj_load_xml(
        name: *const c_char,
        xml: *const c_void,
        len: c_int,
        error: *mut c_char,
        error_size: c_int,
    ) -> *mut MjModel;
    pub(crate) fn hone_mj_model_view_of(m: *const MjModel, out: *mut ModelView);
    pub(crate) fn hone_mj_data_view_of(d: *mut MjData, out: *mut DataView);
    pub(crate) fn hone_mj_body_id(m: *const MjModel, name: *const c_char) -> c_int;
    pub(crate) fn hone_mj_step(m: *const MjModel, d: *mut MjData, nstep: c_int);
    pub(crate) fn hone_mj_state_size(m: *const MjModel) -> c_int;
    pub(crate) fn hone_mj_get_state(m: *const MjModel, d: *const MjData, state: *mut f64);
    pub(crate) fn hone_mj_set_state(m: *const MjModel, d: *mut MjData, state: *const f64);
    pub(crate) fn hone_mj_data_bytes(m: *const MjModel) -> i64;
    pub(crate) fn hone_mj_install_log_handler(sink: LogSink);
}

/// `hone_mj_log_sink` of shim.c: MuJoCo's level (`mjtLogLevel`) and the NUL-terminated text.
pub(crate) type LogSink = extern "C" fn(level: c_int, text: *const c_char);

#[cfg(test)]
unsafe extern "C" {
    fn hone_mj_view_layout(out: *mut usize, capacity: c_int) -> c_int;
    pub(crate) fn hone_mj_data_allocated_bytes(d: *const MjData) -> i64;
}

/// The MuJoCo version the shim was compiled against (`mjVERSION_HEADER`, checked there).
pub(crate) const HEADER_VERSION: c_int = 3011000;

#[cfg(test)]
mod tests {
    use std::mem::{offset_of, size_of};

    use super::*;

    #[test]
    fn view_mirrors_match_the_c_layout() {
        let mut layout = [usize::MAX; 32];
        // SAFETY: the shim writes at most `capacity` entries into `layout`.
        let count = unsafe { hone_mj_view_layout(layout.as_mut_ptr(), layout.len() as c_int) };
        let rust = [
            size_of::<ModelView>(),
            offset_of!(ModelView, nq),
            offset_of!(ModelView, nv),
            offset_of!(ModelView, nu),
            offset_of!(ModelView, na),
            offset_of!(ModelView, nbody),
            offset_of!(ModelView, nsite),
            offset_of!(ModelView, timestep),
            offset_of!(ModelView, qpos0),
            offset_of!(ModelView, body_mass),
            offset_of!(ModelView, actuator_ctrlrange),
            size_of::<DataView>(),
            offset_of!(DataView, time),
            offset_of!(DataView, qpos),
            offset_of!(DataView, qvel),
            offset_of!(DataView, ctrl),
            offset_of!(DataView, xpos),
            offset_of!(DataView, xipos),
            offset_of!(DataView, site_xpos),
            offset_of!(DataView, cinert),
            offset_of!(DataView, cvel),
            offset_of!(DataView, qfrc_actuator),
            offset_of!(DataView, qfrc_constraint),
            offset_of!(DataView, cfrc_ext),
        ];
        assert_eq!(count as usize, rust.len(), "number of layout entries");
        assert_eq!(&layout[..rust.len()], &rust[..]);
    }

    #[test]
    fn library_is_the_version_of_the_headers() {
        // SAFETY: mj_version takes no arguments and only returns a constant.
        assert_eq!(unsafe { mj_version() }, HEADER_VERSION);
    }
}
