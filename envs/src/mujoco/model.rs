//! Safe handles on MuJoCo's model (`Model`, shared read-only by every env of a task) and data
//! (`Simulation`, one per env).

use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::NonNull;
use std::sync::Arc;

use super::{ffi, log};

/// A compiled MuJoCo model (`mjModel`). MuJoCo only reads a model while simulating, so one model
/// serves every env of a task, on every thread.
pub struct Model {
    raw: NonNull<ffi::MjModel>,
    view: ffi::ModelView,
    name: &'static str,
    /// What `mj_makeData` allocates; `None` when a size overflows.
    data_bytes: Option<u64>,
}

// SAFETY: after loading, nothing writes to the mjModel (hone hands out only `*const` pointers to
// it and shared slices of its arrays), and MuJoCo documents const models as safe to share across
// threads; the pointer is owned and freed once, in Drop.
unsafe impl Send for Model {}
// SAFETY: as above: all access is read-only.
unsafe impl Sync for Model {}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("nq", &self.nq())
            .field("nv", &self.nv())
            .field("nu", &self.nu())
            .field("nbody", &self.nbody())
            .finish()
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: `raw` came from mj_loadXML and is freed only here; every Simulation holds an
        // Arc<Model>, so none uses it any more.
        unsafe { ffi::mj_deleteModel(self.raw.as_ptr()) }
    }
}

/// A model array of `len` f64s as a slice. `len` comes from the model's own sizes.
///
/// # Safety
/// `ptr` points to `len` initialised f64s that live as long as the returned slice's owner.
unsafe fn model_slice<'a>(ptr: *const f64, len: c_int) -> &'a [f64] {
    let len = usize::try_from(len).unwrap_or(0);
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

impl Model {
    /// Compiles the model `name` from its XML text. The error is MuJoCo's message.
    pub fn from_xml(name: &'static str, xml: &[u8]) -> Result<Arc<Self>, String> {
        log::install();
        // SAFETY: mj_version takes no arguments.
        let library = unsafe { ffi::mj_version() };
        if library != ffi::HEADER_VERSION {
            return Err(format!(
                "the MuJoCo library is version {library}, hone-envs was compiled against {}: \
                 rebuild after running scripts/setup.sh",
                ffi::HEADER_VERSION
            ));
        }
        let c_name = CString::new(name).map_err(|_| format!("model name `{name}` holds a NUL"))?;
        let len = c_int::try_from(xml.len())
            .map_err(|_| format!("model `{name}`: {} bytes is too large", xml.len()))?;
        let mut error = [0 as c_char; 1024];
        // SAFETY: the name is NUL-terminated, `xml` holds `len` bytes, and `error` has room for
        // the `error.len()` bytes MuJoCo may write (it NUL-terminates).
        let raw = unsafe {
            ffi::hone_mj_load_xml(
                c_name.as_ptr(),
                xml.as_ptr().cast(),
                len,
                error.as_mut_ptr(),
                error.len() as c_int,
            )
        };
        let Some(raw) = NonNull::new(raw) else {
            // SAFETY: MuJoCo wrote a NUL-terminated message into `error` (zeroed beforehand).
            let message = unsafe { CStr::from_ptr(error.as_ptr()) };
            return Err(format!(
                "MuJoCo could not load `{name}`: {}",
                message.to_string_lossy().trim()
            ));
        };
        let mut view = std::mem::MaybeUninit::<ffi::ModelView>::uninit();
        // SAFETY: `raw` is a valid model and the shim fills every field of `view`.
        let view = unsafe {
            ffi::hone_mj_model_view_of(raw.as_ptr(), view.as_mut_ptr());
            view.assume_init()
        };
        // SAFETY: a valid model.
        let data_bytes = u64::try_from(unsafe { ffi::hone_mj_data_bytes(raw.as_ptr()) }).ok();
        Ok(Arc::new(Self {
            raw,
            view,
            name,
            data_bytes,
        }))
    }

    /// The bytes one simulation (`mj_makeData`: the mjData, its buffer and arena) allocates, for
    /// checking that simulations fit before MuJoCo allocates them (its allocator exits the process
    /// when memory runs out). The error names the model when a size overflows.
    pub fn data_bytes(&self) -> Result<u64, String> {
        self.data_bytes.ok_or_else(|| {
            format!(
                "the data of MuJoCo model `{}` is larger than 2^63 bytes",
                self.name
            )
        })
    }

    pub(crate) fn as_ptr(&self) -> *const ffi::MjModel {
        self.raw.as_ptr()
    }

    /// The model's file name (e.g. `ant.xml`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn nq(&self) -> usize {
        self.view.nq as usize
    }

    pub fn nv(&self) -> usize {
        self.view.nv as usize
    }

    pub fn nu(&self) -> usize {
        self.view.nu as usize
    }

    pub fn nbody(&self) -> usize {
        self.view.nbody as usize
    }

    pub fn nsite(&self) -> usize {
        self.view.nsite as usize
    }

    /// Activations; 0 for every gymnasium model.
    pub fn na(&self) -> usize {
        self.view.na as usize
    }

    /// The physics time step (`opt.timestep`).
    pub fn timestep(&self) -> f64 {
        self.view.timestep
    }

    /// `qpos0`: the default pose, gymnasium's `init_qpos`.
    pub fn qpos0(&self) -> &[f64] {
        // SAFETY: qpos0 holds nq values owned by the model.
        unsafe { model_slice(self.view.qpos0, self.view.nq) }
    }

    pub fn body_mass(&self) -> &[f64] {
        // SAFETY: body_mass holds nbody values owned by the model.
        unsafe { model_slice(self.view.body_mass, self.view.nbody) }
    }

    /// `[low, high]` per actuator (`actuator_ctrlrange`).
    pub fn ctrl_range(&self) -> &[f64] {
        // SAFETY: actuator_ctrlrange holds nu x 2 values owned by the model.
        unsafe { model_slice(self.view.actuator_ctrlrange, self.view.nu * 2) }
    }

    /// The index of body `name`, or an error naming it.
    pub fn body_id(&self, name: &str) -> Result<usize, String> {
        let c_name = CString::new(name).map_err(|_| format!("body name `{name}` holds a NUL"))?;
        // SAFETY: a valid model and a NUL-terminated name.
        let id = unsafe { ffi::hone_mj_body_id(self.as_ptr(), c_name.as_ptr()) };
        usize::try_from(id).map_err(|_| format!("model `{}` has no body `{name}`", self.name))
    }
}

/// One simulation (`mjData`) of a shared model: the state of one env.
pub struct Simulation {
    model: Arc<Model>,
    data: NonNull<ffi::MjData>,
    view: ffi::DataView,
    state_len: usize,
}

// SAFETY: the mjData is owned by this value alone (never aliased, freed in Drop) and the model is
// Sync; MuJoCo keeps no thread-local state tied to an mjData, so it may move between threads.
unsafe impl Send for Simulation {}

impl Drop for Simulation {
    fn drop(&mut self) {
        // SAFETY: `data` came from mj_makeData and is freed only here.
        unsafe { ffi::mj_deleteData(self.data.as_ptr()) }
    }
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("model", &self.model.name)
            .field("time", &self.time())
            .finish_non_exhaustive()
    }
}

impl Simulation {
    /// A fresh mjData of `model` (as gymnasium's `mujoco.MjData(model)`): qpos = qpos0, at rest.
    /// The error is MuJoCo's NULL with the warning it logged (`Invalid data: ... too large`).
    /// mju_malloc's failure is an mju_error, which ends the process (see `log`): callers check
    /// that [`Model::data_bytes`] fits first, once for all the simulations they make.
    pub fn new(model: Arc<Model>) -> Result<Self, String> {
        model.data_bytes()?;
        log::clear_last_on_this_thread();
        // SAFETY: a valid model.
        let raw = unsafe { ffi::mj_makeData(model.as_ptr()) };
        let Some(data) = NonNull::new(raw) else {
            let reason = log::last_on_this_thread().unwrap_or_else(|| "no reason given".into());
            return Err(format!(
                "MuJoCo could not make the data of `{}`: {reason}",
                model.name
            ));
        };
        let mut view = std::mem::MaybeUninit::<ffi::DataView>::uninit();
        // SAFETY: a valid mjData; the shim fills every field. mjData's arrays live in one buffer
        // allocated by mj_makeData, so these pointers stay valid until mj_deleteData.
        let view = unsafe {
            ffi::hone_mj_data_view_of(data.as_ptr(), view.as_mut_ptr());
            view.assume_init()
        };
        // SAFETY: a valid model.
        let state_len = unsafe { ffi::hone_mj_state_size(model.as_ptr()) }.max(0) as usize;
        Ok(Self {
            model,
            data,
            view,
            state_len,
        })
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    /// A slice of `len` f64s of this mjData.
    ///
    /// # Safety
    /// `ptr` is one of `self.view`'s arrays and holds at least `len` values.
    #[inline]
    unsafe fn slice(&self, ptr: *const f64, len: usize) -> &[f64] {
        if len == 0 {
            return &[];
        }
        // SAFETY: the caller's contract; `&self` keeps the data alive and unmodified.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// # Safety
    /// As `slice`.
    #[inline]
    unsafe fn slice_mut(&mut self, ptr: *mut f64, len: usize) -> &mut [f64] {
        if len == 0 {
            return &mut [];
        }
        // SAFETY: the caller's contract; `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }

    pub fn time(&self) -> f64 {
        // SAFETY: `time` points into the live mjData.
        unsafe { *self.view.time }
    }

    #[inline]
    pub fn qpos(&self) -> &[f64] {
        // SAFETY: qpos holds nq values.
        unsafe { self.slice(self.view.qpos, self.model.nq()) }
    }

    #[inline]
    pub fn qpos_mut(&mut self) -> &mut [f64] {
        let len = self.model.nq();
        // SAFETY: qpos holds nq values.
        unsafe { self.slice_mut(self.view.qpos, len) }
    }

    #[inline]
    pub fn qvel(&self) -> &[f64] {
        // SAFETY: qvel holds nv values.
        unsafe { self.slice(self.view.qvel, self.model.nv()) }
    }

    #[inline]
    pub fn qvel_mut(&mut self) -> &mut [f64] {
        let len = self.model.nv();
        // SAFETY: qvel holds nv values.
        unsafe { self.slice_mut(self.view.qvel, len) }
    }

    #[inline]
    pub fn ctrl(&self) -> &[f64] {
        // SAFETY: ctrl holds nu values.
        unsafe { self.slice(self.view.ctrl, self.model.nu()) }
    }

    /// Body frame positions, `nbody x 3` (`xpos`; after a step, those of its last substep's
    /// start, as MuJoCo computes them before integrating).
    #[inline]
    pub fn xpos(&self) -> &[f64] {
        // SAFETY: xpos holds nbody x 3 values.
        unsafe { self.slice(self.view.xpos, self.model.nbody() * 3) }
    }

    /// Body centres of mass, `nbody x 3` (`xipos`).
    #[inline]
    pub fn xipos(&self) -> &[f64] {
        // SAFETY: xipos holds nbody x 3 values.
        unsafe { self.slice(self.view.xipos, self.model.nbody() * 3) }
    }

    /// Site positions, `nsite x 3`.
    #[inline]
    pub fn site_xpos(&self) -> &[f64] {
        // SAFETY: site_xpos holds nsite x 3 values.
        unsafe { self.slice(self.view.site_xpos, self.model.nsite() * 3) }
    }

    /// Com-based inertias, `nbody x 10`.
    #[inline]
    pub fn cinert(&self) -> &[f64] {
        // SAFETY: cinert holds nbody x 10 values.
        unsafe { self.slice(self.view.cinert, self.model.nbody() * 10) }
    }

    /// Com-based velocities, `nbody x 6`.
    #[inline]
    pub fn cvel(&self) -> &[f64] {
        // SAFETY: cvel holds nbody x 6 values.
        unsafe { self.slice(self.view.cvel, self.model.nbody() * 6) }
    }

    #[inline]
    pub fn qfrc_actuator(&self) -> &[f64] {
        // SAFETY: qfrc_actuator holds nv values.
        unsafe { self.slice(self.view.qfrc_actuator, self.model.nv()) }
    }

    #[inline]
    pub fn qfrc_constraint(&self) -> &[f64] {
        // SAFETY: qfrc_constraint holds nv values.
        unsafe { self.slice(self.view.qfrc_constraint, self.model.nv()) }
    }

    /// Com-based external forces, `nbody x 6` (filled by `step`'s mj_rnePostConstraint).
    #[inline]
    pub fn cfrc_ext(&self) -> &[f64] {
        // SAFETY: cfrc_ext holds nbody x 6 values.
        unsafe { self.slice(self.view.cfrc_ext, self.model.nbody() * 6) }
    }

    /// `mj_resetData`: time 0, qpos = qpos0, everything else zero.
    pub fn reset(&mut self) {
        // SAFETY: a valid model and its own data.
        unsafe { ffi::mj_resetData(self.model.as_ptr(), self.data.as_ptr()) }
    }

    /// `mj_forward`: every derived quantity from the current state (gymnasium's `set_state`
    /// after writing qpos and qvel).
    pub fn forward(&mut self) {
        // SAFETY: a valid model and its own data.
        unsafe { ffi::mj_forward(self.model.as_ptr(), self.data.as_ptr()) }
    }

    /// gymnasium's `do_simulation(action, frame_skip)`: the controls are the action as f64 (MuJoCo
    /// clamps them to the control range itself), then `frame_skip` mj_steps and
    /// mj_rnePostConstraint. `action` has `nu` values (the pool checked the row length).
    #[inline]
    pub fn step(&mut self, action: &[f32], frame_skip: u32) {
        self.set_ctrl(action);
        // SAFETY: a valid model and its own data.
        unsafe { ffi::hone_mj_step(self.model.as_ptr(), self.data.as_ptr(), frame_skip as c_int) }
    }

    /// `mj_rnePostConstraint` alone: the contact forces (`cfrc_ext`) of the current state, as
    /// `step` leaves them.
    pub fn update_contact_forces(&mut self) {
        // SAFETY: a valid model and its own data; zero mj_steps, then mj_rnePostConstraint.
        unsafe { ffi::hone_mj_step(self.model.as_ptr(), self.data.as_ptr(), 0) }
    }

    /// One bare mj_step with the current controls (the benchmark's physics floor).
    #[inline]
    pub fn physics_step(&mut self) {
        // SAFETY: a valid model and its own data.
        unsafe { ffi::mj_step(self.model.as_ptr(), self.data.as_ptr()) }
    }

    /// Sets the controls to `action` as f64 (0 past its end) without stepping.
    #[inline]
    pub fn set_ctrl(&mut self, action: &[f32]) {
        let nu = self.model.nu();
        let ctrl = self.view.ctrl;
        // SAFETY: ctrl holds nu values.
        let ctrl = unsafe { self.slice_mut(ctrl, nu) };
        for (i, c) in ctrl.iter_mut().enumerate() {
            *c = action.get(i).map_or(0.0, |&a| f64::from(a));
        }
    }

    /// What this mjData holds (struct, buffer, arena), as MuJoCo recorded it.
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> u64 {
        // SAFETY: a valid mjData.
        unsafe { ffi::hone_mj_data_allocated_bytes(self.data.as_ptr()) as u64 }
    }

    /// Length of `save_state`'s vector.
    pub fn state_len(&self) -> usize {
        self.state_len
    }

    /// Appends everything the next step depends on (MuJoCo's `mjSTATE_INTEGRATION`: time, qpos,
    /// qvel, activations, warm start, controls, applied forces).
    pub fn save_state(&self, out: &mut Vec<f64>) {
        let start = out.len();
        out.resize(start + self.state_len, 0.0);
        // SAFETY: `out[start..]` has room for the state_len values mj_getState writes.
        unsafe {
            ffi::hone_mj_get_state(
                self.model.as_ptr(),
                self.data.as_ptr(),
                out[start..].as_mut_ptr(),
            )
        }
    }

    /// Restores a state written by `save_state`, then recomputes the derived quantities.
    pub fn load_state(&mut self, state: &[f64]) -> Result<(), String> {
        if state.len() != self.state_len {
            return Err(format!(
                "a MuJoCo state of `{}` has {} values, got {}",
                self.model.name,
                self.state_len,
                state.len()
            ));
        }
        // SAFETY: `state` holds the state_len values mj_setState reads.
        unsafe { ffi::hone_mj_set_state(self.model.as_ptr(), self.data.as_ptr(), state.as_ptr()) }
        self.forward();
        Ok(())
    }
}
