/*
 * Stand-in for the pyxis SPANK plugin on the local Slurm testbed.
 *
 * Registers pyxis' container options so that sbatch/srun/salloc really parse
 * them, and exports every option given to the job's tasks as an environment
 * variable: --container-image=X -> PYXIS_CONTAINER_IMAGE=X, flags without an
 * argument -> 1 (--no-container-mount-home -> PYXIS_NO_CONTAINER_MOUNT_HOME=1).
 * No container is started: the command runs on the host.
 *
 * The plugin is named "pyxis" so the options travel in the same
 * _SLURM_SPANK_OPTION_pyxis_* variables as with the real plugin.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <slurm/spank.h>

SPANK_PLUGIN(pyxis, 1);

static int accept_option(int val, const char *optarg, int remote)
{
	(void)val;
	(void)optarg;
	(void)remote;
	return 0;
}

#define OPT_ARG(n, info, help) { n, info, help, 1, 0, accept_option }
#define OPT_FLAG(n, help) { n, NULL, help, 0, 0, accept_option }

static struct spank_option options[] = {
	OPT_ARG("container-image", "[USER@][REGISTRY#]IMAGE[:TAG]|PATH", "image to run in"),
	OPT_ARG("container-mounts", "SRC:DST[:FLAGS][,SRC:DST...]", "bind mounts"),
	OPT_ARG("container-workdir", "PATH", "working directory inside the container"),
	OPT_ARG("container-name", "NAME", "name of the container"),
	OPT_ARG("container-save", "PATH", "save the container state to a squashfs file"),
	OPT_ARG("container-env", "NAME[,NAME...]", "variables to take from the host"),
	OPT_FLAG("container-mount-home", "bind mount the user's home directory"),
	OPT_FLAG("no-container-mount-home", "do not bind mount the user's home directory"),
	OPT_FLAG("container-remap-root", "become root inside the container"),
	OPT_FLAG("no-container-remap-root", "do not become root inside the container"),
	OPT_FLAG("container-entrypoint", "execute the image's entrypoint"),
	OPT_FLAG("no-container-entrypoint", "do not execute the image's entrypoint"),
	OPT_FLAG("container-writable", "make the container filesystem writable"),
	OPT_FLAG("container-readonly", "make the container filesystem read-only"),
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Registered in init (not through a static spank_options table) so that
 * sbatch/salloc, which only honour spank_option_register(), accept them too. */
int slurm_spank_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		if (spank_option_register(sp, &options[i]) != ESPANK_SUCCESS) {
			slurm_error("pyxis_shim: cannot register --%s", options[i].name);
			return -1;
		}
	}
	return 0;
}

/* Runs in slurmstepd before the tasks fork; the env set here reaches all tasks. */
int slurm_spank_user_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	for (size_t i = 0; i < N_OPTIONS; i++) {
		char *value = NULL;
		char var[96] = "PYXIS_";
		size_t n = strlen(var);

		if (spank_option_getopt(sp, &options[i], &value) != ESPANK_SUCCESS)
			continue;
		for (const char *c = options[i].name; *c && n < sizeof(var) - 1; c++)
			var[n++] = *c == '-' ? '_' : (char)toupper((unsigned char)*c);
		var[n] = '\0';
		if (spank_setenv(sp, var, options[i].has_arg ? value : "1", 1) != ESPANK_SUCCESS) {
			slurm_error("pyxis_shim: cannot set %s", var);
			return -1;
		}
	}
	return 0;
}
